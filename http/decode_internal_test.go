package http

import "testing"

func TestDuplicateName(t *testing.T) {
	tests := []struct {
		body, want string
		dup        bool
	}{
		{`{}`, "", false},
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, "", false},
		{`{"a":{"x":1,"x":2}}`, "x", true},
		{`{"a":[{"x":1},{"y":1,"y":2}]}`, "y", true},
		{`{"a":"b","b":"a"}`, "", false},
		{`{"a\"b":1,"a\u0022b":2}`, `a"b`, true},
		{`{"s":"{\"a\":1,\"a\":2}"}`, "", false},
		{`[{"a":1},{"a":1}]`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, dup := duplicateName([]byte(tt.body))
			if got != tt.want || dup != tt.dup {
				t.Errorf("got %q %v, want %q %v", got, dup, tt.want, tt.dup)
			}
		})
	}
}
