package activities

import "github.com/imago/imago/internal/contract"

// The names, error types and search attributes the workflows and this package
// share are defined in package contract; these aliases keep their old names
// here.

// Error types of non-retryable activity failures (contract.Err*).
const (
	ErrImageNotFound     = contract.ErrImageNotFound
	ErrImageRevoked      = contract.ErrImageRevoked
	ErrHealthTimeout     = contract.ErrHealthTimeout
	ErrInstancesExited   = contract.ErrInstancesExited
	ErrCheckFailed       = contract.ErrCheckFailed
	ErrProvider          = contract.ErrProvider
	ErrEntrypointEnv     = contract.ErrEntrypointEnv
	ErrTrafficGuard      = contract.ErrTrafficGuard
	ErrAnalysisSpec      = contract.ErrAnalysisSpec
	ErrInvalidSpec       = contract.ErrInvalidSpec
	ErrInvalidDeployment = contract.ErrInvalidDeployment
	ErrTemplate          = contract.ErrTemplate
	ErrImageTest         = contract.ErrImageTest
	ErrBaseRevoked       = contract.ErrBaseRevoked
	ErrBakeFenced        = contract.ErrBakeFenced
)

// RunAnalysisActivity is RunAnalysis' activity type, as the worker registers it.
const RunAnalysisActivity = contract.ActivityRunAnalysis

// Search attributes the reaper and StartDependents read (contract.*Attr).
var (
	ServiceAttr     = contract.ServiceAttr
	EnvironmentAttr = contract.EnvironmentAttr
	WatchBaseAttr   = contract.WatchBaseAttr
)
