package rollouts

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// Decide sends a person's decision (approve, abort, promote, rollback) to the
// running rollout of service to env and waits until the rollout accepted it. A
// refusal carries the rollout's reason.
func Decide(ctx context.Context, c client.Client, service, env, update, by, reason string) error {
	id := contract.RolloutWorkflowID(service, env)
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   update,
		Args:         []any{contract.DecisionInput{By: by, Reason: reason}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no rollout of %s to %s is running", service, env)
	}
	if err != nil {
		return fmt.Errorf("%s refused: %s", update, Reason(err))
	}
	if err := h.Get(ctx, nil); err != nil {
		return fmt.Errorf("%s refused: %s", update, Reason(err))
	}
	return nil
}

// Running reports whether the latest rollout of service to env is still running.
func Running(ctx context.Context, c client.Client, service, env string) (bool, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, contract.RolloutWorkflowID(service, env), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return desc.GetWorkflowExecutionInfo().GetCloseTime() == nil, nil
}

// LastInput returns the input of the latest rollout of service to env: the spec a
// rollback after decommission rolls out again, with the previous image.
//
// It asks the rollout (the input query; the client decodes it, encrypted or not),
// and reads the history's first event when the rollout predates that query.
func LastInput(ctx context.Context, c client.Client, service, env string) (contract.RolloutInput, error) {
	var in contract.RolloutInput
	if v, err := c.QueryWorkflow(ctx, contract.RolloutWorkflowID(service, env), "", contract.QueryInput); err == nil {
		if err := v.Get(&in); err != nil {
			return in, fmt.Errorf("decode the last rollout's input: %w", err)
		}
		return in, nil
	}
	it := c.GetWorkflowHistory(ctx, contract.RolloutWorkflowID(service, env), "", false, 0)
	if !it.HasNext() {
		return in, fmt.Errorf("no rollout of %s to %s yet", service, env)
	}
	ev, err := it.Next()
	if err != nil {
		return in, fmt.Errorf("read the last rollout of %s to %s: %w", service, env, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return in, fmt.Errorf("the history of the last rollout of %s to %s does not start with its input", service, env)
	}
	// Only a plaintext input decodes here, which a worker refuses to run: it was
	// written before encryption, or by a client without imago's key.
	if allow, _ := codec.AllowPlaintextFromEnv(); !allow {
		return in, fmt.Errorf("the last rollout of %s to %s answers no input query, and its history's input would be read unencrypted: %w", service, env, codec.ErrPlaintext)
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
		return in, fmt.Errorf("decode the last rollout's input: %w", err)
	}
	return in, nil
}

// RollbackToPrevious starts a rollback after the old fleet was decommissioned,
// as CodeDeploy does: a rollout with Action "rollback" and the last rollout's
// spec, which finds the previous deployable image itself (the PreviousImage
// activity: the newest one the inventory has that is not live now) and says in
// its progress and history from which image it goes back. It refuses, starting
// nothing, when the inventory has no such image. It returns the run and the spec
// it starts (Image.ID is the image the inventory names now, Strategy the last
// rollout's).
func RollbackToPrevious(ctx context.Context, c client.Client, cat *catalog.Catalog, service, env, by string) (client.WorkflowRun, spec.Rollout, error) {
	return StartLastSpec(ctx, c, service, env, func() (string, error) {
		_, prev, err := cat.Previous(ctx, service, env)
		return prev, err
	}, StartOptions{StartedBy: by, Action: contract.ActionRollback})
}

// StartLastSpec starts a rollout of service to env with the last rollout's
// spec and the image imageID returns (asked once the last spec is found). A
// rollback after decommission and a drift repair (a rollout of the live image,
// which replaces a fleet that drifted instead of patching it) both start so.
func StartLastSpec(ctx context.Context, c client.Client, service, env string, imageID func() (string, error), o StartOptions) (client.WorkflowRun, spec.Rollout, error) {
	last, err := LastInput(ctx, c, service, env)
	if err != nil {
		return nil, spec.Rollout{}, err
	}
	id, err := imageID()
	if err != nil {
		return nil, spec.Rollout{}, err
	}
	r := spec.Rollout{Rollout: last.Spec}
	r.Image = contract.ImageRef{ID: id}
	run, err := Start(ctx, c, r, o)
	return run, r, err
}
