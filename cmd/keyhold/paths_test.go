package main

import (
	"net/http"
	"testing"
)

// An escaped slash in an id stays in the id: it must not reach the route
// the unescaped path would (a proxy in front sees one resource, Keyhold
// must not serve another).
func TestEscapedSlashStaysInTheID(t *testing.T) {
	t.Parallel()
	h := startServer(t, nil)
	a := h.bootstrap(t, "acme")
	s := h.createSA(t, a.token, tenantSA("target"))
	for _, path := range []string{
		saBase + "/" + s.ID + "%2Fcredentials",
		saBase + "/" + s.ID + "%2fcredentials",
		saBase + "/..%2F..%2Fsettings",
	} {
		r := h.do(t, http.MethodGet, path, a.token, nil)
		if r.Status == http.StatusOK {
			t.Errorf("GET %s: 200 %s", path, r.Body)
		}
	}
	expectStatus(t, h.do(t, http.MethodGet, saBase+"/"+s.ID+"/credentials", a.token, nil), http.StatusOK, "the real path")
}
