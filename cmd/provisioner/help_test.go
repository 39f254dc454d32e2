package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// Every subcommand's help has one format, lists only its own flags, and exits 0.
func TestHelp(t *testing.T) {
	tests := []struct {
		args    []string
		golden  string
		without []string // flags that do nothing there
	}{
		// golden texts for the commands whose flags this file's owner keeps; the others change with
		// their own flags, so only their format and flag lists are checked
		{[]string{"run", "-h"}, "", nil},
		{[]string{"dev", "-h"}, "help/dev.txt", []string{"--nats-url", "--secret-path-policy"}},
		{[]string{"publish", "-h"}, "", []string{"--dlq-stream", "--all", "--limit"}},
		{[]string{"results", "-h"}, "", []string{"--dlq-stream", "--requests-stream", "--workspace"}},
		{[]string{"dlq", "-h"}, "help/dlq.txt", []string{"--results-stream", "--requests-stream"}},
		{[]string{"dlq", "list", "-h"}, "help/dlq-list.txt", []string{"--id", "--all", "--results-stream"}},
		{[]string{"dlq", "replay", "-h"}, "help/dlq-replay.txt", []string{"--json", "--limit", "--results-stream"}},
		{[]string{"dlq", "purge", "-h"}, "help/dlq-purge.txt", []string{"--json", "--limit", "--all", "--results-stream"}},
		{[]string{"bench", "-h"}, "", []string{"--nats-url"}},
		{[]string{"sandbox", "-h"}, "", []string{"--nats-url"}},
		{[]string{"doctor", "-h"}, "help/doctor-head.txt", nil},
	}
	format := regexp.MustCompile(`(?s)^usage: provisioner \S+.*\n\n\S.*\n\nflags:\n(  --\S.*\n)+`)
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr lockedBuffer
			if code := dispatch(context.Background(), tc.args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			help := stderr.String()
			if !format.MatchString(help) {
				t.Errorf("help is not in the common format:\n%s", help)
			}
			for _, f := range tc.without {
				if strings.Contains(help, "  "+f+" ") {
					t.Errorf("help lists %s, which does nothing there", f)
				}
			}
			if strings.Contains(help, "\n  -") && regexp.MustCompile(`\n  -[a-z]`).MatchString(help) {
				t.Errorf("help mixes the single-dash format in:\n%s", help)
			}
			switch {
			case tc.golden == "help/doctor-head.txt": // doctor's flags are run's: its text up to them
				head, _, _ := strings.Cut(help, "\nflags:\n")
				golden(t, tc.golden, head+"\n")
			case tc.golden != "":
				golden(t, tc.golden, help)
			}
		})
	}
}

// The client commands take run's connection flags, TLS included.
func TestClientCommandsTakeRunsConnectionFlags(t *testing.T) {
	for _, args := range [][]string{{"publish", "-h"}, {"results", "-h"}, {"dlq", "list", "-h"}, {"dlq", "replay", "-h"}, {"doctor", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr lockedBuffer
			dispatch(context.Background(), args, &stdout, &stderr)
			for _, f := range []string{"--nats-url", "--nats-creds", "--nats-user", "--nats-password", "--nats-token", "--nats-tls-ca", "--nats-tls-cert", "--nats-tls-key", "--subject-prefix"} {
				if !strings.Contains(stderr.String(), "  "+f+" ") {
					t.Errorf("no %s", f)
				}
			}
		})
	}
	t.Run("a client certificate without its key is refused before connecting", func(t *testing.T) {
		var stdout, stderr lockedBuffer
		code := dispatch(context.Background(), []string{"results", "--nats-tls-cert", "c.pem"}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--nats-tls-cert (PROVISIONER_NATS_TLS_CERT): a client certificate needs --nats-tls-key") {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	})
}

// doctor takes exactly run's flags: the same configuration is checked that run would use.
func TestDoctorTakesRunsFlags(t *testing.T) {
	flagsOf := func(args ...string) []string {
		var stdout, stderr lockedBuffer
		dispatch(context.Background(), args, &stdout, &stderr)
		var names []string
		for _, m := range regexp.MustCompile(`(?m)^  (--\S+)`).FindAllStringSubmatch(stderr.String(), -1) {
			names = append(names, m[1])
		}
		return names
	}
	run, doctor := flagsOf("run", "-h"), flagsOf("doctor", "-h")
	if len(run) == 0 || strings.Join(run, " ") != strings.Join(doctor, " ") {
		t.Fatalf("run's flags %v\ndoctor's flags %v", run, doctor)
	}
}
