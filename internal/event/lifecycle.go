package event

// Result messages of the connector lifecycle beyond creation.
const (
	MessageSourceUpdated          = "source_updated"
	MessageSourceUpdateError      = "source_update_error"
	MessageSourceDeleted          = "source_deleted"
	MessageSourceDeleteError      = "source_delete_error"
	MessageWorkspaceOffboarded    = "workspace_offboarded"
	MessageWorkspaceOffboardError = "workspace_offboard_error"
)
