package http

import (
	"net/http"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 192.168.1.5")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote string
		xff          []string
		proxies      Proxies
		want         string
	}{
		{"no proxies trusted: the peer", "10.1.2.3:5000", []string{"203.0.113.7"}, nil, "10.1.2.3"},
		{"untrusted peer: its header is ignored", "198.51.100.1:5000", []string{"203.0.113.7"}, proxies, "198.51.100.1"},
		{"trusted peer: the client it saw", "10.1.2.3:5000", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"a forged entry left of the real client is ignored", "10.1.2.3:5000", []string{"1.2.3.4, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"two trusted hops", "192.168.1.5:80", []string{"203.0.113.7, 10.9.9.9"}, proxies, "203.0.113.7"},
		{"repeated headers read in order", "10.1.2.3:5000", []string{"1.2.3.4", "203.0.113.8"}, proxies, "203.0.113.8"},
		{"only proxies: the first", "10.1.2.3:5000", []string{"10.0.0.1"}, proxies, "10.0.0.1"},
		{"malformed entry: the proxy", "10.1.2.3:5000", []string{"203.0.113.7, junk"}, proxies, "10.1.2.3"},
		{"no header: the proxy", "10.1.2.3:5000", nil, proxies, "10.1.2.3"},
		{"IPv6 client", "10.1.2.3:5000", []string{"2001:db8::1"}, proxies, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tt.proxies.ClientAddr(r); got != tt.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := ParseProxies("10.0.0.0/8, not-an-ip"); err == nil {
		t.Fatal("a malformed entry is accepted")
	}
}
