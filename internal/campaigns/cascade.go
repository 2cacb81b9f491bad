package campaigns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// CascadeFile is the default campaign file of `imago image revoke --cascade`,
// under IMAGO_HOME: the rings (and error budget, override) every rebuild
// after a revoked base goes through, declared once as a promotion path is.
const CascadeFile = "cascade.yaml"

// LoadCascade reads the campaign file of a cascade: path, or, when path is
// "", home/cascade.yaml if there is one (ok false when there is none). Like
// any campaign file without name (optional), services, select or image,
// which the revoke sets.
func LoadCascade(path, home string) (c spec.Campaign, ok bool, err error) {
	if path == "" {
		path = filepath.Join(home, CascadeFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return c, false, nil
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, false, fmt.Errorf("read the cascade campaign file: %w", err)
	}
	c, err = spec.ParseCampaign(data)
	if err != nil {
		return c, false, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkCascadeTemplate(c.CampaignSpec); err != nil {
		return c, false, fmt.Errorf("%s: %w", path, err)
	}
	name := c.Name
	placeholders(&c.CampaignSpec)
	if err := c.Normalize(); err != nil { // everything but what the revoke sets
		return c, false, fmt.Errorf("%s: %w", path, err)
	}
	c.Name, c.Select = name, nil
	return c, true, nil
}

// CheckCascade validates the campaign of a cascade sent as JSON, as LoadCascade
// does a file (without lines).
func CheckCascade(s contract.CampaignSpec) error {
	if err := checkCascadeTemplate(s); err != nil {
		return err
	}
	placeholders(&s)
	return spec.NormalizeCampaign(&s)
}

// placeholders fill in what a revoke sets, so the rest validates.
func placeholders(s *contract.CampaignSpec) {
	s.Name = cascadeName("img-000000000000", s.Name)
	s.Select = &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base", Channel: "stable"}}
}

func checkCascadeTemplate(s contract.CampaignSpec) error {
	var set []string
	if len(s.Services) > 0 {
		set = append(set, "services")
	}
	if s.Select != nil {
		set = append(set, "select")
	}
	if s.Image.Channel != "" {
		set = append(set, "image")
	}
	if len(set) > 0 {
		return fmt.Errorf("a cascade campaign rebuilds every service built on the revoked base: leave out %s (the revoke sets them)", strings.Join(set, ", "))
	}
	return nil
}

func cascadeName(id, name string) string {
	if name != "" {
		return name
	}
	return "cascade-" + id
}

// ErrNothingToRebuild: no image of another service was built on the revoked
// image through a channel; a cascade starts no campaign.
var ErrNothingToRebuild = errors.New("nothing to rebuild")

// CascadeSpec is the rebuild campaign after base image id is revoked: tmpl's
// rings, error budget and override, over every service built on the base
// channel that named the image (channel, or the one channel of its service
// whose history names it), named tmpl's name or cascade-ID. It refuses while
// that channel still names a revoked image: the fixed base goes first.
func CascadeSpec(ctx context.Context, cat *catalog.Catalog, id, channel string, tmpl contract.CampaignSpec) (contract.CampaignSpec, error) {
	s := tmpl
	if err := checkCascadeTemplate(s); err != nil {
		return s, err
	}
	img, err := cat.Get(ctx, id)
	if err != nil {
		return s, err
	}
	desc, err := cat.Descendants(ctx, id)
	if err != nil {
		return s, err
	}
	if !slices.ContainsFunc(desc, func(d contract.Image) bool { return d.Service != img.Service }) {
		return s, fmt.Errorf("no image of another service is built on %s: %w", id, ErrNothingToRebuild)
	}
	if channel == "" {
		if channel, err = namedBy(ctx, cat, img); err != nil {
			return s, err
		}
	}
	cur, err := cat.Channel(ctx, img.Service, channel)
	if err != nil {
		return s, err
	}
	now, err := cat.Get(ctx, cur.ImageID)
	if err != nil {
		return s, err
	}
	if now.Revoked != nil {
		return s, fmt.Errorf("%s/%s still names %s, which is revoked: publish the fixed base on it first (imago bake start -f FILE, or imago image promote ID --channel %s), then start the rebuild",
			img.Service, channel, now.ID, channel)
	}
	s.Name = cascadeName(id, s.Name)
	s.Select = &contract.CampaignSelect{Base: &contract.ImageRef{Service: img.Service, Channel: channel}}
	return s, spec.NormalizeCampaign(&s)
}

// namedBy is the one channel of img's service whose history names img.
func namedBy(ctx context.Context, cat *catalog.Catalog, img contract.Image) (string, error) {
	chans, err := cat.Channels(ctx, img.Service)
	if err != nil {
		return "", err
	}
	var named []string
	for _, ch := range chans {
		hist, err := cat.ChannelHistory(ctx, img.Service, ch.Channel)
		if err != nil {
			return "", err
		}
		if slices.ContainsFunc(hist, func(e contract.ChannelEntry) bool { return e.ImageID == img.ID }) {
			named = append(named, ch.Channel)
		}
	}
	switch len(named) {
	case 0:
		return "", fmt.Errorf("no channel of %s ever named %s, so no service follows it: %w", img.Service, img.ID, ErrNothingToRebuild)
	case 1:
		return named[0], nil
	}
	return "", fmt.Errorf("channels %s of %s all named %s: choose the base channel to rebuild on with --channel", strings.Join(named, ", "), img.Service, img.ID)
}

// Cascade starts the rebuild campaign of CascadeSpec.
func Cascade(ctx context.Context, c client.Client, cat *catalog.Catalog, id, channel string, tmpl contract.CampaignSpec, startedBy string) (client.WorkflowRun, contract.CampaignSpec, error) {
	s, err := CascadeSpec(ctx, cat, id, channel, tmpl)
	if err != nil {
		return nil, s, err
	}
	run, err := Start(ctx, c, s, startedBy)
	return run, s, err
}
