package provision

import "github.com/provisioner-dev/provisioner/contract"

// stampRevision sets the result's revision from the delivery: 1, or n+1 for the n-th replay of a
// dead letter. Every verdict of a request id carries it; the highest wins.
func stampRevision(res *contract.Result, d Delivery) { res.Revision = max(d.Revision, 1) }

// stampRecord carries a record's lifecycle fields into its result.
func stampRecord(res *contract.Result, rec record) {
	res.ReplacedID = rec.ReplacedID
	if rec.Message == contract.MessageSourceDeleted {
		absent := rec.AlreadyAbsent
		res.AlreadyAbsent = &absent
	}
}
