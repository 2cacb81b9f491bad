package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/secretref"
	"github.com/imago/imago/internal/webhook"
)

// RunHook POSTs a hook's payload, signed, to its URL through the outbound
// guard (the analysis providers' client and allow list) and returns the
// answer. With in.Retry an answer other than 2xx is an error, which the
// activity's retry policy retries. The key is read here, on the worker, and
// never leaves it: no result or error holds it.
func (a *Activities) RunHook(ctx context.Context, in contract.HookInput) (contract.HookResult, error) {
	hook := in.Payload.Hook
	nonRetryable := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s hook: "+format, append([]any{hook}, args...)...), contract.ErrHook, nil)
	}
	if err := webhook.CheckURL(in.URL); err != nil {
		return contract.HookResult{}, nonRetryable("URL %v", err)
	}
	key, err := a.hookKey(ctx, in.Secret)
	if err != nil {
		return contract.HookResult{}, nonRetryable("%v", err)
	}
	info := activity.GetInfo(ctx)
	p := in.Payload
	p.Timestamp = info.StartedTime.Unix()
	body, err := json.Marshal(p)
	if err != nil {
		return contract.HookResult{}, nonRetryable("%v", err)
	}
	ans, err := webhook.Post(ctx, a.Analysis, webhook.Request{URL: in.URL, Body: body, Header: map[string]string{
		webhook.SignatureHeader: webhook.Sign(key, body),
		webhook.TimestampHeader: strconv.FormatInt(p.Timestamp, 10),
		// The same for every attempt of this activity: receivers can drop repeats.
		webhook.DeliveryHeader: info.WorkflowExecution.RunID + "/" + info.ActivityID,
	}})
	switch {
	case errors.Is(err, netguard.ErrRefused):
		return contract.HookResult{}, nonRetryable("%v", err)
	case err != nil:
		return contract.HookResult{}, fmt.Errorf("%s hook: %w", hook, err)
	}
	res := contract.HookResult{Status: ans.Status, Answer: ans.Text}
	activity.GetLogger(ctx).Info("hook answered", "hook", hook, "host", webhook.Host(in.URL), "status", ans.Status)
	if in.Retry && !res.OK() {
		return res, fmt.Errorf("%s hook at %s answered %s", hook, webhook.Host(in.URL), ans.Text)
	}
	return res, nil
}

// hookKey is the signing key: the spec's reference resolved, or the worker's
// IMAGO_HOOK_SECRET.
func (a *Activities) hookKey(ctx context.Context, ref string) ([]byte, error) {
	if ref != "" {
		v, err := secretref.Resolve(ctx, a.Analysis, ref)
		if err != nil {
			return nil, fmt.Errorf("signing key (hooks.secret): %v", err)
		}
		if v == "" {
			return nil, fmt.Errorf("signing key (hooks.secret) %s is empty", secretref.Redact(ref))
		}
		return []byte(v), nil
	}
	if a.HookSecret == "" {
		return nil, errors.New("no signing key: set IMAGO_HOOK_SECRET on the worker, or hooks.secret (a secret reference) in the spec")
	}
	return []byte(a.HookSecret), nil
}
