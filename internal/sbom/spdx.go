package sbom

import (
	"fmt"
	"io"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// SPDX maps a BOM made by Generate to an SPDX 2.3 document: the image is the
// described package, Go modules and Debian packages are packages with their
// purl, files are files with their SHA-256; the image CONTAINS all of them and a
// Go binary DEPENDS_ON its modules.
func SPDX(bom *cdx.BOM) (*spdx.Document, error) {
	if bom.Metadata == nil || bom.Metadata.Component == nil {
		return nil, fmt.Errorf("sbom: the BOM names no image (metadata.component)")
	}
	root := bom.Metadata.Component
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      root.Name + "-" + root.Version,
		DocumentNamespace: "https://imago.invalid/spdx/" + root.Version + "/" + strings.TrimPrefix(bom.SerialNumber, "urn:uuid:"),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "imago"}},
			Created:  bom.Metadata.Timestamp,
		},
	}
	ids := map[string]common.ElementID{} // bom-ref -> SPDX ID
	rootID := common.ElementID("Image-" + spdxIDPart(root.Version))
	ids[root.BOMRef] = rootID
	rootPkg := &spdx.Package{
		PackageName: root.Name, PackageSPDXIdentifier: rootID, PackageVersion: root.Version,
		PackageDownloadLocation: "NOASSERTION", PackageChecksums: checksums(root.Hashes),
		PrimaryPackagePurpose: "CONTAINER",
	}
	if root.PackageURL != "" { // the OCI form's manifest digest (Subject.OCIDigest)
		rootPkg.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: root.PackageURL}}
	}
	doc.Packages = append(doc.Packages, rootPkg)
	rel := func(a common.ElementID, kind string, b common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: kind,
		})
	}
	rel("DOCUMENT", "DESCRIBES", rootID)
	if bom.Components != nil {
		for i, c := range *bom.Components {
			switch c.Type {
			case cdx.ComponentTypeFile:
				id := common.ElementID(fmt.Sprintf("File-%d", i))
				ids[c.BOMRef] = id
				doc.Files = append(doc.Files, &spdx.File{
					FileName: "./" + c.Name, FileSPDXIdentifier: id, Checksums: checksums(c.Hashes),
					FileCopyrightText: "NOASSERTION",
				})
				rel(rootID, "CONTAINS", id)
			default:
				id := common.ElementID(fmt.Sprintf("Package-%d", i))
				ids[c.BOMRef] = id
				p := &spdx.Package{
					PackageName: c.Name, PackageSPDXIdentifier: id, PackageVersion: c.Version,
					PackageDownloadLocation: "NOASSERTION", PackageChecksums: checksums(c.Hashes),
					PrimaryPackagePurpose: "LIBRARY",
				}
				if c.PackageURL != "" {
					p.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: c.PackageURL}}
				}
				doc.Packages = append(doc.Packages, p)
				rel(rootID, "CONTAINS", id)
			}
		}
	}
	if bom.Dependencies != nil {
		for _, d := range *bom.Dependencies {
			if d.Dependencies == nil {
				continue
			}
			for _, ref := range *d.Dependencies {
				if a, b := ids[d.Ref], ids[ref]; a != "" && b != "" {
					rel(a, "DEPENDS_ON", b)
				}
			}
		}
	}
	return doc, nil
}

// WriteSPDX writes doc as indented SPDX JSON.
func WriteSPDX(w io.Writer, doc *spdx.Document) error {
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}

func checksums(hs *[]cdx.Hash) []common.Checksum {
	if hs == nil {
		return nil
	}
	var out []common.Checksum
	for _, h := range *hs {
		if h.Algorithm == cdx.HashAlgoSHA256 {
			out = append(out, common.Checksum{Algorithm: common.SHA256, Value: h.Value})
		}
	}
	return out
}

// spdxIDPart keeps the characters an SPDX ID allows (letters, digits, '.', '-').
func spdxIDPart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}

// The output formats of Write.
const (
	FormatCycloneDX = "cyclonedx"
	FormatSPDX      = "spdx"
)

// MediaType is the media type of format, or "" for an unknown one.
func MediaType(format string) string {
	switch format {
	case FormatCycloneDX:
		return "application/vnd.cyclonedx+json"
	case FormatSPDX:
		return "application/spdx+json"
	}
	return ""
}

// Write writes bom in format: CycloneDX JSON as stored, or SPDX 2.3 JSON.
func Write(w io.Writer, bom *cdx.BOM, format string) error {
	switch format {
	case FormatCycloneDX:
		return EncodeCycloneDX(w, bom)
	case FormatSPDX:
		doc, err := SPDX(bom)
		if err != nil {
			return err
		}
		return WriteSPDX(w, doc)
	}
	return fmt.Errorf("unknown SBOM format %q: use %s or %s", format, FormatCycloneDX, FormatSPDX)
}
