// Package policy checks an image against its environment's policy
// (contract.Policy: imago policy set): signed provenance, an SBOM, packages the
// SBOM must not list, a maximum age. A rollout's resolve step calls Evaluate
// before anything is provisioned.
package policy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	version "github.com/hashicorp/go-version"

	"github.com/imago/imago/internal/contract"
)

// Deny is one --deny-package rule.
type Deny struct {
	Name    string
	Version string // "" any version
	Below   bool   // NAME@<VERSION: versions below Version
	limit   *version.Version
}

// String is the rule as written.
func (d Deny) String() string {
	switch {
	case d.Version == "":
		return d.Name
	case d.Below:
		return d.Name + "@<" + d.Version
	default:
		return d.Name + "@" + d.Version
	}
}

// ParseDeny reads a --deny-package rule: NAME (any version), NAME@VERSION
// (exactly that version) or NAME@<VERSION (versions below VERSION, compared as
// versions: v1.2.10 is above v1.2.9; Debian's 3.0.2-0ubuntu1 is below 3.0.7).
func ParseDeny(s string) (Deny, error) {
	i := strings.LastIndex(s, "@")
	if i <= 0 { // no version ("@scope/name" is a name)
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t<>=") {
			return Deny{}, fmt.Errorf("%q: write NAME, NAME@VERSION or NAME@<VERSION", s)
		}
		return Deny{Name: s}, nil
	}
	d := Deny{Name: s[:i], Version: s[i+1:]}
	d.Version, d.Below = strings.CutPrefix(d.Version, "<")
	if strings.ContainsAny(d.Name, " \t<>=") || d.Version == "" || strings.ContainsAny(d.Version, " \t<>=") {
		return Deny{}, fmt.Errorf("%q: write NAME, NAME@VERSION or NAME@<VERSION (e.g. openssl@<3.0.7)", s)
	}
	if d.Below {
		v, err := version.NewVersion(d.Version)
		if err != nil {
			return Deny{}, fmt.Errorf("%q: %q is not a version imago can compare (e.g. 3.0.7, v1.2.3, 2.36-9)", s, d.Version)
		}
		d.limit = v
	}
	return d, nil
}

// Match says whether a package of this name and version is denied, and why (""
// when it is not). A NAME@<VERSION rule refuses a version it cannot compare:
// a deny list fails closed.
func (d Deny) Match(name, ver string) (bool, string) {
	if name != d.Name {
		return false, ""
	}
	switch {
	case d.Version == "":
		return true, fmt.Sprintf("the image has %s %s", name, orUnknown(ver))
	case !d.Below:
		if ver == d.Version || sameVersion(ver, d.Version) {
			return true, fmt.Sprintf("the image has %s %s", name, ver)
		}
		return false, ""
	}
	v, err := version.NewVersion(ver)
	if err != nil {
		return true, fmt.Sprintf("the image has %s %s, a version that cannot be compared with %s (a deny rule fails closed)", name, orUnknown(ver), d.Version)
	}
	if v.LessThan(d.limit) {
		return true, fmt.Sprintf("the image has %s %s, below %s", name, ver, d.Version)
	}
	return false, ""
}

func sameVersion(a, b string) bool {
	va, err1 := version.NewVersion(a)
	vb, err2 := version.NewVersion(b)
	return err1 == nil && err2 == nil && va.Equal(vb) && va.Metadata() == vb.Metadata()
}

func orUnknown(v string) string {
	if v == "" {
		return "(no version)"
	}
	return v
}

// Check says what is wrong with p, one error per field (JSON names, the
// message naming the flag of imago policy set).
func Check(p contract.Policy) contract.FieldErrors {
	var es contract.FieldErrors
	if p.MaxAge < 0 {
		es = append(es, contract.FieldError{Field: "maxAge", Msg: fmt.Sprintf("--max-age must be positive, got %s", p.MaxAge)})
	}
	for i, s := range p.DenyPackages {
		if _, err := ParseDeny(s); err != nil {
			es = append(es, contract.FieldError{Field: fmt.Sprintf("denyPackages[%d]", i), Msg: "--deny-package " + err.Error()})
		}
	}
	if p.ProvenanceKey != "" {
		if !p.RequireProvenance {
			es = append(es, contract.FieldError{Field: "provenanceKey", Msg: "--provenance-key needs --require-provenance"})
		} else if err := checkPublicKey(p.ProvenanceKey); err != nil {
			es = append(es, contract.FieldError{Field: "provenanceKey", Msg: "--provenance-key: " + err.Error()})
		}
	}
	if !p.RequireProvenance && !p.RequireSBOM && len(p.DenyPackages) == 0 && p.MaxAge == 0 {
		es = append(es, contract.FieldError{Field: "requireProvenance", Msg: "a policy needs a rule: --require-provenance, --require-sbom, --deny-package or --max-age (remove a policy with imago policy delete)"})
	}
	return es
}

// checkPublicKey accepts one PEM block holding a PKIX public key (what
// `cosign generate-key-pair` writes to cosign.pub, or openssl pkey -pubout).
func checkPublicKey(s string) error {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("not a PEM public key (-----BEGIN PUBLIC KEY-----)")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return errors.New("more than one PEM block: give one public key")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return fmt.Errorf("not a public key: %v", err)
	}
	return nil
}

// ProvenanceChecker verifies an image's signed provenance.
type ProvenanceChecker interface {
	// Check returns nil when image img has provenance whose signature
	// verifies, with keyPEM when it is not empty (a signature by another key
	// is refused), and an error saying why not otherwise.
	Check(ctx context.Context, img contract.Image, keyPEM string) error
}

// NoVerifier is the ProvenanceChecker of a worker without a provenance
// verifier: it finds no signed provenance for any image, so a
// --require-provenance environment refuses every image.
type NoVerifier struct{}

// Check refuses img.
func (NoVerifier) Check(_ context.Context, img contract.Image, _ string) error {
	return fmt.Errorf("image %s has no signed provenance", img.ID)
}

// Violation is one rule of a policy that an image breaks.
type Violation struct {
	Rule   string // "--require-sbom", "--deny-package openssl@<3.0.7", "--max-age 90d", "--require-provenance"
	Detail string
}

// Refusal is a policy's refusal of an image: every rule it breaks.
type Refusal struct {
	Environment string
	Policy      string // contract.Policy.Name
	ImageID     string
	Violations  []Violation
}

func (r *Refusal) Error() string {
	parts := make([]string, len(r.Violations))
	for i, v := range r.Violations {
		parts[i] = v.Rule + ": " + v.Detail
	}
	return fmt.Sprintf("%s refuses image %s: %s (see the policy with: imago policy show %s)",
		r.Policy, r.ImageID, strings.Join(parts, "; "), r.Environment)
}

// Inputs are what Evaluate reads beyond the policy and the image.
type Inputs struct {
	// SBOM returns the image's SBOM; an error wrapping notFound when it has none.
	SBOM       func(ctx context.Context) (*cdx.BOM, error)
	NotFound   error // the error SBOM wraps when there is none (catalog.ErrNotFound)
	Provenance ProvenanceChecker
	Now        time.Time
}

// Evaluate checks img against p: nil when it complies, a *Refusal naming each
// rule it breaks, or another error when something could not be read (worth a
// retry).
func Evaluate(ctx context.Context, p contract.Policy, img contract.Image, in Inputs) error {
	r := &Refusal{Environment: p.Environment, Policy: p.Name(), ImageID: img.ID}
	add := func(rule, detail string) { r.Violations = append(r.Violations, Violation{Rule: rule, Detail: detail}) }
	if p.RequireSBOM || len(p.DenyPackages) > 0 {
		bom, err := in.SBOM(ctx)
		switch {
		case err != nil && in.NotFound != nil && errors.Is(err, in.NotFound):
			if p.RequireSBOM {
				add("--require-sbom", err.Error())
			} else {
				add("--deny-package", fmt.Sprintf("image %s has no SBOM to check its packages against (a deny list fails closed): %v", img.ID, err))
			}
		case err != nil:
			return fmt.Errorf("%s: read the SBOM of image %s: %w", p.Name(), img.ID, err)
		default:
			for _, s := range p.DenyPackages {
				d, err := ParseDeny(s)
				if err != nil {
					return fmt.Errorf("%s: --deny-package %w", p.Name(), err)
				}
				for _, c := range components(bom) {
					if ok, why := d.Match(c.Name, c.Version); ok {
						add("--deny-package "+s, why)
					}
				}
			}
		}
	}
	if p.MaxAge > 0 {
		age := in.Now.Sub(img.Created)
		if age > p.MaxAge.D() {
			add("--max-age "+contract.FormatAge(p.MaxAge), fmt.Sprintf("image %s was created %s, %s ago", img.ID, img.Created.UTC().Format(time.RFC3339), days(age)))
		}
	}
	if p.RequireProvenance {
		pc := in.Provenance
		if pc == nil {
			pc = NoVerifier{}
		}
		if err := pc.Check(ctx, img, p.ProvenanceKey); err != nil {
			add("--require-provenance", err.Error())
		}
	}
	if len(r.Violations) > 0 {
		return r
	}
	return nil
}

// components are the BOM's packages: every component but files (they have
// no version), nested ones included.
func components(bom *cdx.BOM) []cdx.Component {
	var out []cdx.Component
	var walk func([]cdx.Component)
	walk = func(cs []cdx.Component) {
		for _, c := range cs {
			if c.Type != cdx.ComponentTypeFile {
				out = append(out, c)
			}
			if c.Components != nil {
				walk(*c.Components)
			}
		}
	}
	if bom != nil && bom.Components != nil {
		walk(*bom.Components)
	}
	return out
}

// days prints an age in whole days ("120 days"), or as a duration under a day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Second).String()
	}
	n := int(d / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
