package awsfake

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// node is an XML element: text, or child elements (nil children are skipped).
type node struct {
	name string
	text *string
	kids []*node
}

func el(name string, kids ...*node) *node { return &node{name: name, kids: kids} }

func tx(name, text string) *node { return &node{name: name, text: &text} }

// opt is tx, or nothing for an empty value.
func opt(name, text string) *node {
	if text == "" {
		return nil
	}
	return tx(name, text)
}

func num(name string, n int) *node { return tx(name, strconv.Itoa(n)) }

func ts(name string, t time.Time) *node { return tx(name, t.UTC().Format("2006-01-02T15:04:05.000Z")) }

// items is a list in EC2's format (<name><item>...</item></name>).
func items(name string, kids []*node) *node {
	for _, k := range kids {
		k.name = "item"
	}
	return el(name, kids...)
}

// members is a list in the query services' format (<name><member>...</member></name>).
func members(name string, kids []*node) *node {
	for _, k := range kids {
		k.name = "member"
	}
	return el(name, kids...)
}

func (n *node) write(b *strings.Builder) {
	b.WriteString("<" + n.name + ">")
	if n.text != nil {
		xml.EscapeText(b, []byte(*n.text))
	}
	for _, k := range n.kids {
		if k != nil {
			k.write(b)
		}
	}
	b.WriteString("</" + n.name + ">")
}

var namespaces = map[string]string{
	EC2:         "http://ec2.amazonaws.com/doc/" + versionEC2 + "/",
	AutoScaling: "http://autoscaling.amazonaws.com/doc/" + versionASG + "/",
	ELBv2:       "http://elasticloadbalancing.amazonaws.com/doc/" + versionELB + "/",
}

// writeResult answers action with res: EC2 puts the result's children right in
// <ActionResponse>; the query services wrap them in <ActionResult>.
func writeResult(w http.ResponseWriter, svc, action string, res *node) {
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString("<" + action + `Response xmlns="` + namespaces[svc] + `">`)
	reqID := randHex(8) + "-" + randHex(4) + "-" + randHex(4) + "-" + randHex(4) + "-" + randHex(12)
	if svc == EC2 {
		tx("requestId", reqID).write(&b)
		if res != nil {
			for _, k := range res.kids {
				if k != nil {
					k.write(&b)
				}
			}
		}
	} else {
		if res == nil {
			res = el("")
		}
		res.name = action + "Result"
		res.write(&b)
		el("ResponseMetadata", tx("RequestId", reqID)).write(&b)
	}
	b.WriteString("</" + action + "Response>")
	w.Header().Set("Content-Type", "text/xml")
	w.Write([]byte(b.String()))
}

func writeError(w http.ResponseWriter, svc string, e apiError) {
	var b strings.Builder
	b.WriteString(xml.Header)
	reqID := randHex(8) + "-" + randHex(4) + "-" + randHex(4) + "-" + randHex(4) + "-" + randHex(12)
	if svc == EC2 {
		el("Response", el("Errors", el("Error", tx("Code", e.code), tx("Message", e.message))), tx("RequestID", reqID)).write(&b)
	} else {
		kind := "Sender"
		if e.status >= 500 {
			kind = "Receiver"
		}
		el("ErrorResponse", el("Error", tx("Type", kind), tx("Code", e.code), tx("Message", e.message)), tx("RequestId", reqID)).write(&b)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	w.Write([]byte(b.String()))
}
