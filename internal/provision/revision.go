package provision

import "github.com/provisioner-dev/provisioner/internal/event"

// stampRevision sets the result's revision from the delivery (1 unless a dead letter was replayed).
func stampRevision(res *event.Result, d Delivery) {}

// stampRecord carries a record's lifecycle fields into its result.
func stampRecord(res *event.Result, rec record) {}
