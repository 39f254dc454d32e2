package event_test

import (
	"time"

	"github.com/provisioner-dev/provisioner/schemas"
)

var fixedNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func schemaName(prefix string) schemas.Name { return schemas.Name(prefix + ".result.v1.json") }
