package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

const plain = "ghp_supersecret_0001"

func TestNothingPrintsThePlainText(t *testing.T) {
	v := secret.New(plain)
	f := secret.NewFields(map[string]string{"token": plain})
	type holder struct {
		V secret.Value
		F secret.Fields
	}
	h := holder{V: v, F: f}

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("x", "v", v, "f", f, "h", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "v", v, "f", f, "h", h)

	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := fmt.Errorf("fetch: %w", fmt.Errorf("value %v", v))

	outputs := map[string]string{
		"%v":      fmt.Sprintf("%v", v),
		"%+v":     fmt.Sprintf("%+v", h),
		"%#v":     fmt.Sprintf("%#v", h),
		"%s":      fmt.Sprintf("%s", v),
		"%q":      fmt.Sprintf("%q", v),
		"%x":      fmt.Sprintf("%x", v),
		"fields":  fmt.Sprintf("%v %+v %#v %s", f, f, f, f),
		"json":    string(j),
		"slog":    logs.String(),
		"error":   wrapped.Error(),
		"unwrap":  errors.Unwrap(wrapped).Error(),
		"ptr %+v": fmt.Sprintf("%+v", &h),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, plain) {
				t.Fatalf("plain text leaked: %s", out)
			}
			if !strings.Contains(out, secret.Redacted) {
				t.Fatalf("expected %s in %q", secret.Redacted, out)
			}
		})
	}
}

func TestRevealIsExplicit(t *testing.T) {
	v := secret.New(plain)
	if v.Reveal() != plain || v.IsZero() {
		t.Fatal("Reveal must return the plain text")
	}
	if !(secret.Value{}).IsZero() {
		t.Fatal("zero Value must be zero")
	}
	f := secret.NewFields(map[string]string{"token": plain, "a": "b"})
	if got := string(f.RevealJSON()); got != `{"a":"b","token":"`+plain+`"}` {
		t.Fatalf("RevealJSON = %s", got)
	}
	if got := strings.Join(f.Names(), ","); got != "a,token" {
		t.Fatalf("Names = %s", got)
	}
	var u secret.Value
	if err := u.UnmarshalText([]byte(plain)); err != nil || u.Reveal() != plain {
		t.Fatal("UnmarshalText")
	}
}
