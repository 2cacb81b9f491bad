// Package contract is what imago's workflows, activities, CLI, API, telemetry,
// events and catalog agree on: every workflow and activity input and result
// type, the typed Phase and Outcome enums, the names of workflows, activities,
// updates, queries and signals, search-attribute keys and event types.
//
// It imports nothing of imago's and no SDK, so that package workflows, which
// calls activities by their registered names with these types, builds without
// the AWS SDK, the Packer SDK, gocloud drivers or an HTTP server (see
// TestWorkflowsStayLight in package workflows).
//
// Everything here is on the wire: JSON field names and the string forms of
// names and enums are in recorded workflow histories, search attributes,
// events and the inventory. Renaming one breaks running workflows and the
// replay suite (workflows/replay_test.go).
package contract
