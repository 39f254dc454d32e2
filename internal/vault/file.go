package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// maxSecretBytes bounds what a backend reads: credentials are small, anything larger is a mistake.
const maxSecretBytes = 1 << 20

// fileBackend reads JSON or YAML files below a directory. os.Root keeps every open inside the
// directory, symlinks included, so a reference can never reach another tenant's tree or /etc.
type fileBackend struct {
	root *os.Root
}

func newFileBackend(dir string) (*fileBackend, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("secrets-dir: %w", err)
	}
	return &fileBackend{root: root}, nil
}

func (b *fileBackend) close() error { return b.root.Close() }

func (b *fileBackend) fetch(_ context.Context, ref Ref) (map[string]any, error) {
	f, err := b.root.Open(ref.Path)
	if err != nil {
		return nil, fileError(ref, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fileError(ref, err)
	}
	if !info.Mode().IsRegular() {
		return nil, &NotFoundError{Ref: ref, Detail: "not a regular file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return nil, fileError(ref, err)
	}
	if len(data) > maxSecretBytes {
		return nil, &InvalidCredentialsError{Ref: ref, Reason: "file larger than 1 MiB"}
	}
	return decodeObject(ref, data, !strings.HasSuffix(ref.Path, ".json"))
}

// fileError classifies an open or read error. The cause is not wrapped: it adds nothing the
// reference does not already say, and a message about the file never needs its content.
func fileError(ref Ref, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &NotFoundError{Ref: ref}
	default:
		// fs.ErrPermission, a symlink leaving the directory, a path through a non-directory.
		return &PermissionError{Ref: ref, Detail: "cannot open below the secrets directory"}
	}
}

// decodeObject parses a JSON (or, with yamlOK, YAML) object. Parser errors are dropped, not
// wrapped: they quote the input, and the input is a secret.
func decodeObject(ref Ref, data []byte, yamlOK bool) (map[string]any, error) {
	var obj map[string]any
	var err error
	if yamlOK {
		err = yaml.Unmarshal(data, &obj)
	} else {
		err = json.Unmarshal(data, &obj)
	}
	if err != nil || obj == nil {
		return nil, &InvalidCredentialsError{Ref: ref, Reason: "not a JSON or YAML object"}
	}
	return obj, nil
}
