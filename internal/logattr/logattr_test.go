package logattr_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/logattr"
)

func TestContextAttributesReachEveryRecord(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(logattr.NewHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := logattr.With(context.Background(), slog.String("request_id", "r1"))
	ctx = logattr.With(ctx, slog.String("workspace", "acme"))

	for _, tc := range []struct {
		name string
		log  func()
		want []string
		not  []string
	}{
		{"with context", func() { logger.InfoContext(ctx, "call") }, []string{`"request_id":"r1"`, `"workspace":"acme"`}, nil},
		{"derived logger", func() { logger.With("component", "airbyte").DebugContext(ctx, "x") }, nil, nil},
		{"grouped", func() { logger.WithGroup("g").InfoContext(ctx, "y", "k", "v") }, []string{`"request_id":"r1"`}, nil},
		{"without context", func() { logger.Info("plain") }, nil, []string{"request_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			tc.log()
			for _, w := range tc.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("%s lacks %s", buf.String(), w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(buf.String(), n) {
					t.Errorf("%s has %s", buf.String(), n)
				}
			}
		})
	}
}
