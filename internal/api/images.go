package api

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provenance/chain"
	"github.com/imago/imago/internal/sbom"
)

// serviceRE is the catalog's rule for service names.
var serviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ImageList answers GET /v1/images.
type ImageList struct {
	Images []contract.Image `json:"images"`
}

// listImages is GET /v1/images?service=S: images, newest first, as `imago image list`.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	imgs, err := s.cfg.Catalog.List(r.Context(), r.URL.Query().Get("service"))
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []contract.Image{}
	}
	return writeJSON(w, http.StatusOK, ImageList{Images: imgs})
}

// ImageDetail answers GET /v1/images/{id}, as `imago image show -o json`.
type ImageDetail struct {
	Image    contract.Image `json:"image"`
	Channels []string       `json:"channels"` // channels of its service that point at it
	Children []string       `json:"children"` // images built on it
}

func (s *Server) showImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	img, err := s.cfg.Catalog.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	chans, err := s.cfg.Catalog.Channels(ctx, img.Service)
	if err != nil {
		return err
	}
	d := ImageDetail{Image: img, Channels: []string{}, Children: []string{}}
	for _, c := range chans {
		if c.ImageID == img.ID {
			d.Channels = append(d.Channels, c.Channel)
		}
	}
	children, err := s.cfg.Catalog.Children(ctx, img.ID)
	if err != nil {
		return err
	}
	for _, k := range children {
		d.Children = append(d.Children, k.ID)
	}
	return writeJSON(w, http.StatusOK, d)
}

// promoteImage is POST /v1/images/{id}/promote: point a channel of the image's
// service at it (history kept), as `imago image promote`. A revoked image is
// refused (409).
func (s *Server) promoteImage(w http.ResponseWriter, r *http.Request) error {
	req, err := DecodePromote(r.Body)
	if err != nil {
		return err
	}
	ctx := r.Context()
	img, err := s.cfg.Catalog.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := authorize(r, tokens.Scope{Kind: tokens.Bake, Service: img.Service}); err != nil {
		return err
	}
	e, err := s.cfg.Catalog.MoveChannel(ctx, img.Service, req.Channel, img.ID, catalog.MoveOptions{By: principal(r), Reason: req.Reason})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

// Revoked answers a revoke.
type Revoked struct {
	// Revoked lists the images this call revoked, the image first; images revoked
	// before keep their first revocation and are not listed.
	Revoked []string `json:"revoked"`
	// Campaign is the rebuild campaign a cascade with a campaign started;
	// NoCampaign says why it started none (the revocation stands).
	Campaign   string `json:"campaign,omitempty"`
	NoCampaign string `json:"noCampaign,omitempty"`
}

// revokeImage is POST /v1/images/{id}/revoke, as `imago image revoke`.
func (s *Server) revokeImage(w http.ResponseWriter, r *http.Request) error {
	req, err := DecodeRevoke(r.Body)
	if err != nil {
		return err
	}
	img, err := s.cfg.Catalog.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	need := tokens.Scope{Kind: tokens.Bake, Service: img.Service}
	if req.Cascade { // it revokes images built on this one, of any service
		need = tokens.Scope{Kind: tokens.Admin}
	}
	if err := authorize(r, need); err != nil {
		return err
	}
	ids, err := s.cfg.Catalog.Revoke(r.Context(), img.ID, catalog.RevokeOptions{Reason: req.Reason, By: principal(r), Cascade: req.Cascade})
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	out := Revoked{Revoked: ids}
	if req.Cascade && req.Campaign != nil { // admin: it may deploy any service
		_, c, err := campaigns.Cascade(r.Context(), s.cfg.Client, s.cfg.Catalog, img.ID, req.Channel, *req.Campaign, principal(r))
		if err != nil {
			out.NoCampaign = err.Error()
		} else {
			out.Campaign = c.Name
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// ChannelList answers GET /v1/services/{service}/channels.
type ChannelList struct {
	Service  string                  `json:"service"`
	Channels []contract.ChannelEntry `json:"channels"` // the current entry of each channel, by name
}

func pathService(r *http.Request) (string, error) {
	service := r.PathValue("service")
	if !serviceRE.MatchString(service) {
		return "", contract.FieldErrors{{Field: "path.service", Msg: fmt.Sprintf("%q: use letters, digits, '.', '_' and '-' (at most 128 characters)", service)}}
	}
	return service, nil
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) error {
	service, err := pathService(r)
	if err != nil {
		return err
	}
	chans, err := s.cfg.Catalog.Channels(r.Context(), service)
	if err != nil {
		return err
	}
	if chans == nil {
		chans = []contract.ChannelEntry{}
	}
	return writeJSON(w, http.StatusOK, ChannelList{Service: service, Channels: chans})
}

// ChannelHistory answers GET /v1/services/{service}/channels/{channel}.
type ChannelHistory struct {
	Current contract.ChannelEntry   `json:"current"`
	History []contract.ChannelEntry `json:"history"` // every move, oldest first
}

func (s *Server) channelHistory(w http.ResponseWriter, r *http.Request) error {
	service, err := pathService(r)
	if err != nil {
		return err
	}
	channel := r.PathValue("channel")
	if !channelRE.MatchString(channel) {
		return contract.FieldErrors{{Field: "path.channel", Msg: fmt.Sprintf("%q must be lowercase letters, digits and '-', starting with a letter (e.g. stable)", channel)}}
	}
	hist, err := s.cfg.Catalog.ChannelHistory(r.Context(), service, channel)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ChannelHistory{Current: hist[len(hist)-1], History: hist})
}

// imageSBOM is GET /v1/images/{id}/sbom[?format=cyclonedx|spdx]: the image's
// SBOM, as `imago image sbom`.
func (s *Server) imageSBOM(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = sbom.FormatCycloneDX
	}
	if sbom.MediaType(format) == "" {
		return &BadRequest{Msg: fmt.Sprintf("format: %q is not an SBOM format: use %s (the default) or %s", format, sbom.FormatCycloneDX, sbom.FormatSPDX)}
	}
	bom, err := s.cfg.Catalog.SBOM(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := sbom.Write(&buf, bom, format); err != nil {
		return err
	}
	w.Header().Set("Content-Type", sbom.MediaType(format))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}

// imageProvenance is GET /v1/images/{id}/provenance: the image's chain (its
// provenance, channel moves, rollouts with approvals and analysis verdicts,
// live fleets), as `imago image provenance -o json`.
func (s *Server) imageProvenance(w http.ResponseWriter, r *http.Request) error {
	ch, err := chain.Build(r.Context(), s.cfg.Catalog, r.PathValue("id"), chain.Options{Temporal: s.cfg.Client})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ch)
}
