// Package provenance makes, signs and verifies the SLSA provenance of baked
// images: an in-toto Statement v1 (github.com/in-toto/attestation go/v1) whose
// predicate is SLSA Provenance v1 (predicates/provenance/v1), wrapped in a DSSE
// envelope (payload type application/vnd.in-toto+json) signed with a
// sigstore/sigstore signer. It is the format `cosign attest-blob` writes and
// `cosign verify-blob-attestation --type slsaprovenance1` reads.
//
// What a bake states (Build):
//
//	subject                 the image archive, digest sha256 (and the OCI image's manifest digest when it has one)
//	buildDefinition
//	  buildType             BuildType
//	  externalParameters    service, builder, entrypoint, labels, input digest, variable NAMES (never values)
//	  resolvedDependencies  the source tree, files and template (sha256 of each tree, as the input digest reads it),
//	                        the base image (its ID and archive digest)
//	runDetails
//	  builder.id            BuilderID + the worker's identity; builder.version: imago's version
//	  metadata              invocationId = the bake's workflow ID + "/" + run ID; startedOn, finishedOn
//
// Signing (Sign) happens in the bake's publish activity, on the worker: the key
// (IMAGO_SIGNING_KEY, see LoadSigner) never leaves it and never reaches Temporal.
// With no key the statement is stored in an envelope with no signatures
// (Unsigned): it still says where the image came from, and Verify refuses it
// with ErrUnsigned.
//
// Verifying, for callers such as a policy check:
//
//	v, err := provenance.LoadVerifier(pemBytes)             // the public key that must have signed
//	env, _ := cat.Provenance(ctx, img.ID)                   // the envelope the catalog keeps
//	st, err := provenance.VerifyDigest(env, img.Digest, v)  // or Verify(env, archiveReader, v)
//
// Verify checks the DSSE signature with sigstore's dsse verifier (the code
// cosign uses) and that a subject of the statement has the archive's sha256.
package provenance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// PredicateType is SLSA Provenance v1's.
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names imago's bakes: what externalParameters and
	// resolvedDependencies mean.
	BuildType = "https://imago.dev/provenance/bake/v1"
	// BuilderID prefixes runDetails.builder.id; the worker's identity follows "#".
	BuilderID = "https://imago.dev/builder/imago-worker"
)

// Material is one input of a bake: a source tree, file or template (Digest is
// the sha256 of its names, modes and contents), or the base image.
type Material struct {
	Name   string `json:"name"`
	URI    string `json:"uri,omitempty"`
	Digest string `json:"digest"` // sha256:<hex>
}

// Build is what a bake knows about the image it published.
type Build struct {
	ImageID       string
	Service       string
	ArchiveDigest string // sha256:<hex> of the image archive: the subject
	OCIDigest     string // sha256:<hex> of the OCI manifest, when the bake made one
	InputDigest   string
	Builder       string // imago-local, packer
	Entrypoint    []string
	Labels        map[string]string
	VariableNames []string // the names of the bake's variables, vars and passEnv: never their values
	Materials     []Material
	BaseImageID   string
	BaseDigest    string
	WorkflowID    string
	RunID         string
	Worker        string // the worker's identity
	Version       string // imago's version
	StartedOn     time.Time
	FinishedOn    time.Time
}

// Statement is a decoded in-toto statement with its SLSA predicate.
type Statement struct {
	*intoto.Statement
	Provenance *slsa.Provenance
	// Signed is false for an envelope with no signatures (Parse only: Verify
	// refuses those).
	Signed bool
}

// NewStatement makes the in-toto statement of b, validated.
func NewStatement(b Build) (*intoto.Statement, error) {
	if b.ArchiveDigest == "" {
		return nil, errors.New("provenance: the image has no archive digest to be the subject")
	}
	subject := []*intoto.ResourceDescriptor{{Name: b.ImageID + ".tar.gz", Digest: digestMap(b.ArchiveDigest)}}
	if b.OCIDigest != "" {
		subject = append(subject, &intoto.ResourceDescriptor{Name: b.ImageID + ".oci", Digest: digestMap(b.OCIDigest),
			MediaType: "application/vnd.oci.image.manifest.v1+json"})
	}
	ext := map[string]any{
		"service":       b.Service,
		"builder":       b.Builder,
		"imageId":       b.ImageID,
		"inputDigest":   b.InputDigest,
		"variableNames": anyStrings(b.VariableNames),
		"entrypoint":    anyStrings(b.Entrypoint),
	}
	if len(b.Labels) > 0 {
		labels := map[string]any{}
		for k, v := range b.Labels {
			labels[k] = v
		}
		ext["labels"] = labels
	}
	if b.BaseImageID != "" {
		ext["baseImage"] = b.BaseImageID
	}
	extS, err := structpb.NewStruct(ext)
	if err != nil {
		return nil, fmt.Errorf("provenance: external parameters: %w", err)
	}
	var deps []*intoto.ResourceDescriptor
	for _, m := range b.Materials {
		deps = append(deps, &intoto.ResourceDescriptor{Name: m.Name, Uri: m.URI, Digest: digestMap(m.Digest)})
	}
	if b.BaseImageID != "" {
		rd := &intoto.ResourceDescriptor{Name: "base-image:" + b.BaseImageID, Uri: "imago:image/" + b.BaseImageID}
		if b.BaseDigest != "" {
			rd.Digest = digestMap(b.BaseDigest)
		}
		deps = append(deps, rd)
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{BuildType: BuildType, ExternalParameters: extS, ResolvedDependencies: deps},
		RunDetails: &slsa.RunDetails{
			Builder: &slsa.Builder{Id: BuilderID + "#" + b.Worker, Version: map[string]string{"imago": b.Version}},
			Metadata: &slsa.BuildMetadata{
				InvocationId: b.WorkflowID + "/" + b.RunID,
				StartedOn:    ts(b.StartedOn),
				FinishedOn:   ts(b.FinishedOn),
			},
		},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	predS, err := toStruct(pred)
	if err != nil {
		return nil, err
	}
	st := &intoto.Statement{Type: intoto.StatementTypeUri, Subject: subject, PredicateType: PredicateType, Predicate: predS}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return st, nil
}

// Marshal is the statement's JSON, the DSSE payload.
func Marshal(st *intoto.Statement) ([]byte, error) {
	return protojson.Marshal(st)
}

// decodeStatement reads a DSSE payload into a statement with its predicate.
func decodeStatement(payload []byte) (*Statement, error) {
	var st intoto.Statement
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("provenance: the payload is not an in-toto statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("provenance: predicate type %q, want %q", st.PredicateType, PredicateType)
	}
	data, err := protojson.Marshal(st.Predicate)
	if err != nil {
		return nil, err
	}
	var p slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("provenance: the predicate is not SLSA provenance v1: %w", err)
	}
	return &Statement{Statement: &st, Provenance: &p}, nil
}

// SubjectDigests returns the sha256 digests (sha256:<hex>) the statement is about.
func (s *Statement) SubjectDigests() []string {
	var out []string
	for _, rd := range s.GetSubject() {
		if d := rd.GetDigest()["sha256"]; d != "" {
			out = append(out, "sha256:"+d)
		}
	}
	return out
}

// Covers reports whether digest (sha256:<hex>) is a subject of the statement.
func (s *Statement) Covers(digest string) bool {
	return slices.Contains(s.SubjectDigests(), strings.ToLower(digest))
}

// InvocationID is the bake's workflow ID and run ID, "<workflow>/<run>".
func (s *Statement) InvocationID() string {
	return s.Provenance.GetRunDetails().GetMetadata().GetInvocationId()
}

// BuilderID is runDetails.builder.id: BuilderID#<worker identity>.
func (s *Statement) BuilderID() string { return s.Provenance.GetRunDetails().GetBuilder().GetId() }

func toStruct(p *slsa.Provenance) (*structpb.Struct, error) {
	data, err := protojson.Marshal(p)
	if err != nil {
		return nil, err
	}
	var s structpb.Struct
	if err := protojson.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func digestMap(d string) map[string]string {
	algo, hexPart, ok := strings.Cut(d, ":")
	if !ok {
		return map[string]string{"sha256": d}
	}
	return map[string]string{algo: hexPart}
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// SHA256 is the digest (sha256:<hex>) of data.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Version is imago's version as the running binary knows it: its module
// version and VCS revision from the build info.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += "+" + s.Value
		}
	}
	return v
}

// WorkerIdentity is pid@host, as Temporal names a worker by default.
func WorkerIdentity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}
