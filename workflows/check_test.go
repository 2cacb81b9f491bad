package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// A canary on a worker whose provider has no weighted routes is refused by the
// rollout's first step, before the image is resolved or anything is made, and
// the checked update answers with the problem by field.
func TestRolloutRefusesAStrategyTheProviderCannotRunBeforeAnythingElse(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	acts := &activities.Activities{Provider: provider.New("dns", switchOnlyDriver{})}
	env.RegisterActivity(acts)
	var ran []string
	for _, name := range []string{"ResolveImage", "ReadRoute", "Provision", "SetRoute", "TerminateByToken"} {
		env.OnActivity(name, mock.Anything, mock.Anything).Return(func(context.Context, any) error {
			ran = append(ran, name)
			return nil
		}).Maybe()
	}
	env.OnActivity(acts.RecordDeployment, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	r := canarySpec(weightStep(10))
	r.Provider = "dns"
	var answered error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(contract.UpdateChecked, "checked-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("checked refused: %v", err) }, OnAccept: func() {},
			OnComplete: func(_ any, err error) { answered = err },
		})
	}, 0)

	env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})

	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.Empty(t, ran, "nothing runs after a refused check")
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	assert.Equal(t, ErrRolloutFailed, app.Type())
	assert.Contains(t, app.Message(), "failed while checking the spec against the worker's provider: invalid spec:\n  strategy.type: canary needs a provider with routes that split traffic between fleets by weight (weights), which the worker's provider dns does not have (it has: none)")
	assert.Contains(t, app.Message(), "nothing was changed")
	es, ok := contract.InvalidSpec(err)
	require.True(t, ok, "the workflow's failure carries the problems: %v", err)
	assert.Equal(t, []string{"strategy.type", "analyses.errors.provider"}, fields(es))
	es, ok = contract.InvalidSpec(answered)
	require.True(t, ok, "the checked update answers with the problems: %v", answered)
	assert.Equal(t, []string{"strategy.type", "analyses.errors.provider"}, fields(es))

	var p contract.RolloutProgress
	v, qerr := env.QueryWorkflow(contract.QueryProgress)
	require.NoError(t, qerr)
	require.NoError(t, v.Get(&p))
	assert.Equal(t, contract.PhaseFailed, p.Phase)
	assert.Empty(t, p.NewFleet)
}

func fields(es contract.FieldErrors) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Field)
	}
	return out
}

// switchOnlyDriver is a provider driver with no capabilities; CheckSpec reads
// only its name and capabilities.
type switchOnlyDriver struct{ provider.Driver }

func (switchOnlyDriver) Capabilities() provider.Capabilities { return provider.CapabilitiesOf() }
