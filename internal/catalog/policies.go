package catalog

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/policy"
)

// Environment policies live as a log per environment,
// policies/<environment>/<seq>.json, written once like lifecycle rules and
// channel moves (create-if-not-exist; concurrent writers take the next seq):
// the current policy is the highest seq, and a delete is an entry of its own,
// so the log keeps who set and removed each policy, and when.

func policyPrefix(environment string) string { return "policies/" + environment + "/" }

// SetPolicy records p as its environment's policy (replacing the one before)
// and returns it with its Seq. An invalid policy is refused with
// contract.FieldErrors naming the fields.
func (c *Catalog) SetPolicy(ctx context.Context, p contract.Policy) (contract.Policy, error) {
	if err := checkEnvironment(p.Environment); err != nil {
		return p, fmt.Errorf("policy: %w", err)
	}
	if es := policy.Check(p); len(es) > 0 {
		return p, es
	}
	p.Deleted = false
	return c.appendPolicy(ctx, p)
}

// DeletePolicy removes the policy of environment (rollouts there are checked
// against nothing from now on); ErrNotFound (wrapped) when it has none.
func (c *Catalog) DeletePolicy(ctx context.Context, environment, by string, now time.Time) (contract.Policy, error) {
	if _, err := c.Policy(ctx, environment); err != nil {
		return contract.Policy{}, err
	}
	return c.appendPolicy(ctx, contract.Policy{Environment: environment, Deleted: true, By: by, Time: now.UTC()})
}

func (c *Catalog) appendPolicy(ctx context.Context, p contract.Policy) (contract.Policy, error) {
	if p.Time.IsZero() {
		p.Time = time.Now().UTC()
	}
	head, err := c.policyHead(ctx, p.Environment)
	if err != nil {
		return p, err
	}
	_, err = c.appendSeq(ctx, policyPrefix(p.Environment), head.Seq, "policy of "+p.Environment, "policy changes",
		func(seq int64) any { p.Seq = seq; return p },
		func(int64) (bool, error) { return false, nil })
	return p, err
}

// policyHead is the latest entry of environment's policy log; Seq 0 when it
// never had a policy.
func (c *Catalog) policyHead(ctx context.Context, environment string) (contract.Policy, error) {
	if err := checkEnvironment(environment); err != nil {
		return contract.Policy{}, fmt.Errorf("policy: %w", err)
	}
	prefix := policyPrefix(environment)
	seqs, err := c.seqsUnder(ctx, prefix)
	if err != nil || len(seqs) == 0 {
		return contract.Policy{}, err
	}
	var p contract.Policy
	if err := c.readJSON(ctx, seqKey(prefix, seqs[len(seqs)-1]), &p); err != nil {
		return p, fmt.Errorf("read policy of %s: %w", environment, err)
	}
	return p, nil
}

// Policy returns the policy of environment; ErrNotFound (wrapped) when it has
// none (never set, or deleted).
func (c *Catalog) Policy(ctx context.Context, environment string) (contract.Policy, error) {
	p, err := c.policyHead(ctx, environment)
	if err != nil {
		return p, err
	}
	if p.Seq == 0 || p.Deleted {
		return contract.Policy{}, fmt.Errorf("environment %s has no policy %w; set one with: imago policy set %s --require-sbom", environment, ErrNotFound, environment)
	}
	return p, nil
}

// Policies returns the policy of every environment that has one, by environment.
func (c *Catalog) Policies(ctx context.Context) ([]contract.Policy, error) {
	envs, err := c.listDirs(ctx, "policies/")
	if err != nil {
		return nil, err
	}
	sort.Strings(envs)
	heads := make([]contract.Policy, len(envs))
	err = parallel(ctx, len(envs), func(ctx context.Context, i int) (err error) {
		heads[i], err = c.policyHead(ctx, envs[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []contract.Policy{}
	for _, p := range heads {
		if p.Seq > 0 && !p.Deleted {
			out = append(out, p)
		}
	}
	return out, nil
}
