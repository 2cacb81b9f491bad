package spec

import "github.com/imago/imago/internal/contract"

// Duration is a time.Duration written as "30s", "5m", "1h30m" in YAML and JSON
// (contract.Duration: activity inputs carry it).
type Duration = contract.Duration
