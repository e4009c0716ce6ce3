package main

import (
	"strings"
	"testing"
)

const linuxStatus = "Name:\tkeyhold\nVmPeak:\t  900 kB\nVmHWM:\t   234567 kB\nVmRSS:\t   123456 kB\nVmData:\t 5 kB\n"

func TestStatusField(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		field   string
		want    uint64
		wantErr bool
	}{
		{"rss", linuxStatus, "VmRSS", 123456 << 10, false},
		{"peak", linuxStatus, "VmHWM", 234567 << 10, false},
		{"no such line", "Name:\tkeyhold\n", "VmRSS", 0, true},
		{"malformed", "VmRSS:\tlots kB\n", "VmRSS", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statusField(strings.NewReader(tt.status), tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("statusField(%s) = %d, %v; want %d, error %v", tt.field, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestScaleOption(t *testing.T) {
	base := benchOptions{duration: 1, rounds: 1, concurrency: 1, listAccounts: 1, roles: benchRolesPage}
	for _, tt := range []struct {
		name  string
		scale int
		ok    bool
	}{
		{"off", 0, true},
		{"some", 200_000, true},
		{"the default", DefaultScaleAccounts, true},
		{"negative", -1, false},
		{"too many", maxScaleAccounts + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.scale = tt.scale
			if err := o.validate(); (err == nil) != tt.ok {
				t.Fatalf("validate with --scale %d: %v, want ok=%v", tt.scale, err, tt.ok)
			}
		})
	}
}
