// Package chain assembles what `imago image provenance` and
// GET /v1/images/{id}/provenance show: an image's whole chain of custody,
// source → bake → image → channel moves → rollouts → fleets live now, from the
// catalog (the image, its provenance envelope, channel histories, the
// inventory) and Temporal (each rollout's approvals and analysis verdicts, which
// its workflow's progress query keeps).
package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provenance"
)

// Chain is an image's chain of custody.
type Chain struct {
	Image      contract.Image          `json:"image"`
	Provenance *Provenance             `json:"provenance,omitempty"`
	Channels   []contract.ChannelEntry `json:"channelMoves"`
	Rollouts   []Rollout               `json:"rollouts"`
	Live       []Live                  `json:"live"`
	// Notes say what could not be read (no provenance, Temporal unreachable).
	Notes []string `json:"notes,omitempty"`
}

// Provenance is the image's provenance: source and bake.
type Provenance struct {
	// Signed: the envelope has a signature. Verified is set when a key was
	// given: whether the signature verifies with it and covers the archive.
	Signed      bool   `json:"signed"`
	Verified    *bool  `json:"verified,omitempty"`
	VerifyError string `json:"verifyError,omitempty"`

	BakeWorkflowID string          `json:"bakeWorkflowId"`
	BakeRunID      string          `json:"bakeRunId"`
	BakedBy        string          `json:"bakedBy,omitempty"` // who started the bake: its channel move's By
	Builder        string          `json:"builder"`           // runDetails.builder.id: imago-worker#<worker>
	Version        string          `json:"version,omitempty"` // imago's
	StartedOn      string          `json:"startedOn,omitempty"`
	FinishedOn     string          `json:"finishedOn,omitempty"`
	Subjects       []string        `json:"subjects"`
	Materials      []Material      `json:"materials"`
	VariableNames  []string        `json:"variableNames,omitempty"`
	Statement      json.RawMessage `json:"statement"` // the in-toto statement as signed
}

// Material is a resolved dependency of the bake.
type Material struct {
	Name   string `json:"name"`
	URI    string `json:"uri,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// Rollout is a deployment of the image with what its workflow recorded.
type Rollout struct {
	contract.Deployment
	Approvals []contract.Approval `json:"approvals,omitempty"`
	Analyses  []Analysis          `json:"analyses,omitempty"`
	Instances int                 `json:"instances,omitempty"` // the new fleet's, as the rollout's progress says
}

// Analysis is an analysis' verdict in a rollout.
type Analysis struct {
	Name    string `json:"name"`
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
}

// Live is a fleet of the image that is live now.
type Live struct {
	Environment string    `json:"environment"`
	FleetID     string    `json:"fleetId"`
	Instances   int       `json:"instances,omitempty"`
	RolloutID   string    `json:"rolloutId,omitempty"`
	Since       time.Time `json:"since"`
}

// Options tune Build.
type Options struct {
	// Temporal answers the rollouts' progress queries (approvals, analyses);
	// nil leaves them out, with a note.
	Temporal client.Client
	// Verifier, when set, checks the provenance's signature and subject.
	Verifier signature.Verifier
	// QueryTimeout bounds each rollout's query; default 5 s.
	QueryTimeout time.Duration
}

// Build assembles the chain of image id.
func Build(ctx context.Context, cat *catalog.Catalog, id string, o Options) (*Chain, error) {
	img, err := cat.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ch := &Chain{Image: img, Channels: []contract.ChannelEntry{}, Rollouts: []Rollout{}, Live: []Live{}}
	if err := ch.readProvenance(ctx, cat, o); err != nil {
		return nil, err
	}
	if err := ch.readChannels(ctx, cat); err != nil {
		return nil, err
	}
	if err := ch.readRollouts(ctx, cat, o); err != nil {
		return nil, err
	}
	return ch, nil
}

func (ch *Chain) readProvenance(ctx context.Context, cat *catalog.Catalog, o Options) error {
	env, err := cat.Provenance(ctx, ch.Image.ID)
	if errors.Is(err, catalog.ErrNotFound) {
		ch.Notes = append(ch.Notes, err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	st, err := provenance.Parse(env)
	if err != nil {
		ch.Notes = append(ch.Notes, fmt.Sprintf("the stored provenance of %s cannot be read: %v", ch.Image.ID, err))
		return nil
	}
	p := &Provenance{Signed: st.Signed, Builder: st.BuilderID(), Subjects: st.SubjectDigests(), Materials: []Material{}}
	if o.Verifier != nil {
		_, verr := provenance.VerifyDigest(env, ch.Image.Digest, o.Verifier)
		ok := verr == nil
		p.Verified = &ok
		if verr != nil {
			p.VerifyError = verr.Error()
		}
	}
	p.BakeWorkflowID, p.BakeRunID = splitInvocation(st.InvocationID())
	rd := st.Provenance.GetRunDetails()
	p.Version = rd.GetBuilder().GetVersion()["imago"]
	if t := rd.GetMetadata().GetStartedOn(); t != nil {
		p.StartedOn = t.AsTime().UTC().Format(time.RFC3339)
	}
	if t := rd.GetMetadata().GetFinishedOn(); t != nil {
		p.FinishedOn = t.AsTime().UTC().Format(time.RFC3339)
	}
	for _, d := range st.Provenance.GetBuildDefinition().GetResolvedDependencies() {
		m := Material{Name: d.GetName(), URI: d.GetUri()}
		if s := d.GetDigest()["sha256"]; s != "" {
			m.Digest = "sha256:" + s
		}
		p.Materials = append(p.Materials, m)
	}
	if names := st.Provenance.GetBuildDefinition().GetExternalParameters().GetFields()["variableNames"]; names != nil {
		for _, v := range names.GetListValue().GetValues() {
			p.VariableNames = append(p.VariableNames, v.GetStringValue())
		}
	}
	if p.Statement, err = protojson.Marshal(st.Statement); err != nil {
		return err
	}
	ch.Provenance = p
	return nil
}

// splitInvocation splits "<workflow ID>/<run ID>": the run ID is the last part
// (workflow IDs have slashes: bake/<service>/<channel>).
func splitInvocation(s string) (workflowID, runID string) {
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// readChannels keeps the moves of the image's service's channels to or away from it.
func (ch *Chain) readChannels(ctx context.Context, cat *catalog.Catalog) error {
	heads, err := cat.Channels(ctx, ch.Image.Service)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	for _, h := range heads {
		hist, err := cat.ChannelHistory(ctx, h.Service, h.Channel)
		if err != nil {
			return err
		}
		for _, e := range hist {
			if e.ImageID == ch.Image.ID || e.Previous == ch.Image.ID {
				ch.Channels = append(ch.Channels, e)
				if ch.Provenance != nil && ch.Provenance.BakedBy == "" && e.ImageID == ch.Image.ID && e.Reason == "bake" {
					ch.Provenance.BakedBy = e.By
				}
			}
		}
	}
	return nil
}

// readRollouts keeps the deployments of the image in every environment of its
// service, with their approvals and analyses, and the fleets live now.
func (ch *Chain) readRollouts(ctx context.Context, cat *catalog.Catalog, o Options) error {
	envs, err := cat.Environments(ctx, ch.Image.Service)
	if err != nil {
		return err
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Second
	}
	var queryErr error
	for _, env := range envs {
		hist, err := cat.History(ctx, ch.Image.Service, env, 0)
		if err != nil {
			return err
		}
		for _, d := range hist {
			if d.ImageID != ch.Image.ID {
				continue
			}
			d.Spec = nil
			r := Rollout{Deployment: d}
			if o.Temporal != nil && d.RolloutID != "" && d.RunID != "" && queryErr == nil {
				var p *contract.RolloutProgress
				if p, queryErr = progress(ctx, o.Temporal, d, o.QueryTimeout); p != nil {
					r.Approvals, r.Instances = p.Approvals, p.Instances
					for _, a := range p.Analyses {
						r.Analyses = append(r.Analyses, Analysis{Name: a.Name, Phase: a.Phase, Message: a.Message})
					}
				}
			}
			ch.Rollouts = append(ch.Rollouts, r)
		}
		live, err := cat.Live(ctx, ch.Image.Service, env)
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		if err == nil && live.ImageID == ch.Image.ID {
			l := Live{Environment: env, FleetID: live.FleetID, RolloutID: live.RolloutID, Since: live.Since()}
			for _, r := range ch.Rollouts {
				if r.Seq == live.Seq && r.Environment == env {
					l.Instances = r.Instances
				}
			}
			ch.Live = append(ch.Live, l)
		}
	}
	switch {
	case o.Temporal == nil:
		ch.Notes = append(ch.Notes, "approvals and analysis verdicts left out: no Temporal connection")
	case queryErr != nil:
		ch.Notes = append(ch.Notes, "approvals and analysis verdicts left out: "+queryErr.Error())
	}
	return nil
}

// progress asks a rollout's run for its progress; a run Temporal no longer
// keeps (retention) answers nothing and is no error.
func progress(ctx context.Context, c client.Client, d contract.Deployment, timeout time.Duration) (*contract.RolloutProgress, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	val, err := c.QueryWorkflow(ctx, d.RolloutID, d.RunID, contract.QueryProgress)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("query %s (run %s): %w", d.RolloutID, d.RunID, err)
	}
	var p contract.RolloutProgress
	if err := val.Get(&p); err != nil {
		return nil, nil
	}
	return &p, nil
}
