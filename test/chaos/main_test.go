package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "defaults are the full soak", check: func(t *testing.T, o options) {
			if o.plan.Requests != 10000 || o.plan.Resends < 0.15 || o.workers != 3 || o.kills < 5 || o.natsRestarts < 1 {
				t.Errorf("defaults %+v fall short of issue 4", o)
			}
			if o.plan.Workspaces != 200 || o.plan.Seed == 0 {
				t.Errorf("workspaces %d, seed %d: want derived values", o.plan.Workspaces, o.plan.Seed)
			}
		}},
		{name: "short soak", args: []string{"-requests", "1000", "-seed", "9", "-timeout", "90s"}, check: func(t *testing.T, o options) {
			if o.plan.Workspaces != 20 || o.plan.Seed != 9 || o.timeout != 90*time.Second {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "few requests still get three workspaces", args: []string{"-requests", "10"}, check: func(t *testing.T, o options) {
			if o.plan.Workspaces != 3 {
				t.Errorf("workspaces = %d, want 3", o.plan.Workspaces)
			}
		}},
		{name: "no workers", args: []string{"-workers", "0"}, wantErr: "-workers"},
		{name: "negative kills", args: []string{"-kills", "-1"}, wantErr: "must not be negative"},
		{name: "faults that cannot converge", args: []string{"-fault-rate", "0.9"}, wantErr: "-fault-rate"},
		{name: "latency below its floor", args: []string{"-latency", "1ms"}, wantErr: "-latency"},
		{name: "unknown lookup", args: []string{"-lookup", "never"}, wantErr: "-lookup"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}
