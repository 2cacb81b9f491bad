package watch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/imago/imago/internal/contract"
)

// TestAHeldRolloutSaysWhyAndUntilWhen: --watch and status show the window or
// freeze a rollout waits for.
func TestAHeldRolloutSaysWhyAndUntilWhen(t *testing.T) {
	opens := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	rowOf := func(p contract.RolloutProgress) string {
		for _, r := range RolloutFrame("rollout/prod/web", p).Rows {
			if r.Label == LabelHeld {
				return r.Value
			}
		}
		return ""
	}
	assert.Equal(t, "outside every deployment window (Mon-Fri 09:00-16:00 Europe/Berlin); until "+opens.Local().Format("Mon 2006-01-02 15:04 MST"),
		rowOf(contract.RolloutProgress{Story: contract.Story{Phase: contract.PhaseWaitingWindow},
			Hold: &contract.Hold{Phase: contract.PhaseWaitingWindow, Why: "outside every deployment window (Mon-Fri 09:00-16:00 Europe/Berlin)", Until: &opens}}))
	assert.Equal(t, "prod/* frozen by ana: incident 42; until the freeze ends",
		rowOf(contract.RolloutProgress{Story: contract.Story{Phase: contract.PhaseFrozen},
			Hold: &contract.Hold{Phase: contract.PhaseFrozen, Why: "prod/* frozen by ana: incident 42"}}))
	assert.Empty(t, rowOf(contract.RolloutProgress{Story: contract.Story{Phase: contract.PhaseCanary}}), "no row when nothing holds it")
}
