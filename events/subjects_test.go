package events

import "testing"

func TestParseSubject(t *testing.T) {
	tests := []struct {
		subject               string
		tenant, aggregate, id string
		ok                    bool
	}{
		{"keyhold.acme.service_account.01abc", "acme", "service_account", "01abc", true},
		{"keyhold._.user.u1", "_", "user", "u1", true},
		{"keyhold.acme.service_account", "", "", "", false},
		{"keyhold.acme.service_account.a.b", "", "", "", false},
		{"keyhold", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			tenant, agg, id, ok := ParseSubject(tt.subject)
			if tenant != tt.tenant || agg != tt.aggregate || id != tt.id || ok != tt.ok {
				t.Errorf("got %q %q %q %v, want %q %q %q %v", tenant, agg, id, ok, tt.tenant, tt.aggregate, tt.id, tt.ok)
			}
		})
	}
}

func TestParseAckReply(t *testing.T) {
	tests := []struct {
		name, reply  string
		seq, pending uint64
		ok           bool
	}{
		{"v1", "$JS.ACK.KEYHOLD.cons.1.42.7.1764100000000000000.3", 42, 3, true},
		{"v2 with domain and account hash", "$JS.ACK.hub.ACCHASH.KEYHOLD.cons.1.42.7.1764100000000000000.0", 42, 0, true},
		{"v2 with random token", "$JS.ACK.hub.ACCHASH.KEYHOLD.cons.1.42.7.1764100000000000000.0.xyz", 42, 0, true},
		{"not an ack", "_INBOX.abc", 0, 0, false},
		{"too few tokens", "$JS.ACK.KEYHOLD.cons.1.42", 0, 0, false},
		{"too many tokens", "$JS.ACK.a.b.c.d.e.f.g.h.i.j.k", 0, 0, false},
		{"not a number", "$JS.ACK.KEYHOLD.cons.1.x.7.1764100000000000000.3", 0, 0, false},
		{"empty", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, pending, ok := parseAckReply(tt.reply)
			if seq != tt.seq || pending != tt.pending || ok != tt.ok {
				t.Errorf("got %d %d %v, want %d %d %v", seq, pending, ok, tt.seq, tt.pending, tt.ok)
			}
		})
	}
}
