// Command interop independently checks a Vouch log directory with Go's
// golang.org/x/mod/sumdb/note and sumdb/tlog (Debian's golang-golang-x-mod-dev):
// the checkpoint's note signature, the tiles (authenticated against the signed
// root by tlog's tile hash reader), every entry bundle against the level-0
// hashes, Vouch's inclusion and consistency proofs, and witness cosignatures
// (c2sp.org/tlog-cosignature v1, checked here with crypto/ed25519).
//
// Build offline in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go run main.go LOGDIR VECTORS.json
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type vectors struct {
	LogVkey      string            `json:"log_vkey"`
	CosignerVkey string            `json:"cosigner_vkey"`
	Cosigned     string            `json:"cosigned_checkpoint"`
	Bundle       string            `json:"proof_bundle"`
	BundleEntry  string            `json:"proof_bundle_entry"`
	Roots        map[string]string `json:"roots"`
	Inclusion    []struct {
		Index int64    `json:"index"`
		Size  int64    `json:"size"`
		Proof []string `json:"proof"`
	} `json:"inclusion"`
	Consistency []struct {
		Old   int64    `json:"old"`
		New   int64    `json:"new"`
		Proof []string `json:"proof"`
	} `json:"consistency"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "interop: "+format+"\n", args...)
	os.Exit(1)
}

// tilePath names a tile the c2sp.org/tlog-tiles way: no height element, and
// "entries" for entry bundles.
func tilePath(t tlog.Tile) string {
	n := t.N
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	level := strconv.Itoa(t.L)
	if t.L == -1 {
		level = "entries"
	}
	p := "tile/" + level + "/" + s
	if t.W != 256 {
		p += fmt.Sprintf(".p/%d", t.W)
	}
	return p
}

type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return 8 }
func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := os.ReadFile(filepath.Join(d.dir, tilePath(t)))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
func (d dirTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func hashes(b64 []string) []tlog.Hash {
	out := make([]tlog.Hash, len(b64))
	for i, s := range b64 {
		h, err := tlog.ParseHash(s)
		if err != nil {
			fail("bad hash %q: %v", s, err)
		}
		out[i] = h
	}
	return out
}

// parseCheckpoint reads the c2sp.org/tlog-checkpoint body: origin, size, root.
func parseCheckpoint(text string) (string, int64, tlog.Hash) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || !strings.HasSuffix(text, "\n") {
		fail("checkpoint has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || strconv.FormatInt(size, 10) != lines[1] {
		fail("bad size line %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("bad root line %q", lines[2])
	}
	return lines[0], size, root
}

func checkCosignature(signed []byte, vkey string) {
	// vkey: name+hex(id)+base64(0x04 || key)
	parts := strings.Split(vkey, "+")
	if len(parts) != 3 {
		fail("bad cosigner vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		fail("bad cosigner key")
	}
	idh := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if fmt.Sprintf("%x", idh[:4]) != parts[1] {
		fail("cosigner key id %x does not match vkey %s", idh[:4], parts[1])
	}
	msg := string(signed)
	split := strings.LastIndex(msg, "\n\n")
	text, sigs := msg[:split+1], msg[split+2:]
	found := false
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		f := strings.Split(strings.TrimPrefix(line, "\u2014 "), " ")
		if len(f) != 2 || f[0] != parts[0] {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(b) != 4+8+64 || !bytes.Equal(b[:4], idh[:4]) {
			continue
		}
		ts := binary.BigEndian.Uint64(b[4:12])
		m := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, text)
		if !ed25519.Verify(ed25519.PublicKey(raw[1:]), []byte(m), b[12:]) {
			fail("cosignature by %s does not verify", parts[0])
		}
		found = true
	}
	if !found {
		fail("no cosignature by %s", parts[0])
	}
}

// checkBundle verifies a tlog-proof bundle: header, optional extra, index,
// proof lines, a blank line, then the signed checkpoint.
func checkBundle(text string, entry []byte, log note.Verifier, cosigner string) {
	split := strings.Index(text, "\n\n")
	if split < 0 {
		fail("bundle: no blank line")
	}
	head, signed := strings.Split(text[:split], "\n"), text[split+2:]
	if head[0] != "c2sp.org/tlog-proof@v1" {
		fail("bundle: bad header %q", head[0])
	}
	head = head[1:]
	if len(head) > 0 && strings.HasPrefix(head[0], "extra ") {
		head = head[1:]
	}
	if len(head) == 0 || !strings.HasPrefix(head[0], "index ") {
		fail("bundle: no index line")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(head[0], "index "), 10, 64)
	if err != nil {
		fail("bundle: bad index: %v", err)
	}
	proof := tlog.RecordProof(hashes(head[1:]))
	n, err := note.Open([]byte(signed), note.VerifierList(log))
	if err != nil {
		fail("bundle checkpoint: %v", err)
	}
	_, size, root := parseCheckpoint(n.Text)
	if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(entry)); err != nil {
		fail("bundle inclusion: %v", err)
	}
	checkCosignature([]byte(signed), cosigner)
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: interop LOGDIR VECTORS.json")
	}
	dir := os.Args[1]
	var v vectors
	raw, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		fail("vectors: %v", err)
	}

	// 1. The log's signed checkpoint, with Go's note verifier.
	verifier, err := note.NewVerifier(v.LogVkey)
	if err != nil {
		fail("log vkey: %v", err)
	}
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint note: %v", err)
	}
	origin, size, root := parseCheckpoint(n.Text)
	if origin != verifier.Name() {
		fail("origin %q is not the key name %q", origin, verifier.Name())
	}

	// 2. The tiles: tlog's tile hash reader authenticates every tile it reads
	// against the signed tree; the tree hash must equal the root.
	hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, dirTiles{dir})
	th, err := tlog.TreeHash(size, hr)
	if err != nil {
		fail("tree hash from tiles: %v", err)
	}
	if th != root {
		fail("tiles hash to %v, checkpoint says %v", th, root)
	}

	// 3. Every entry bundle against the authenticated level-0 hashes.
	for start := int64(0); start < size; start += 256 {
		w := size - start
		if w > 256 {
			w = 256
		}
		body, err := os.ReadFile(filepath.Join(dir, tilePath(tlog.Tile{H: 8, L: -1, N: start / 256, W: int(w)})))
		if err != nil {
			fail("entry bundle: %v", err)
		}
		idx := make([]int64, w)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, start+int64(i))
		}
		want, err := hr.ReadHashes(idx)
		if err != nil {
			fail("level-0 hashes: %v", err)
		}
		for i := int64(0); i < w; i++ {
			if len(body) < 2 {
				fail("bundle %d truncated", start/256)
			}
			l := int(binary.BigEndian.Uint16(body))
			if len(body) < 2+l {
				fail("bundle %d truncated", start/256)
			}
			if tlog.RecordHash(body[2:2+l]) != want[i] {
				fail("entry %d does not hash to its leaf", start+i)
			}
			body = body[2+l:]
		}
		if len(body) != 0 {
			fail("bundle %d has trailing bytes", start/256)
		}
	}

	// 4. Vouch's proofs, checked with tlog, and equal to the proofs tlog builds.
	rootAt := func(s int64) tlog.Hash {
		r, ok := v.Roots[strconv.FormatInt(s, 10)]
		if !ok {
			fail("no root for size %d", s)
		}
		return hashes([]string{r})[0]
	}
	for _, p := range v.Inclusion {
		leaf := []tlog.Hash{}
		leaf, err = hr.ReadHashes([]int64{tlog.StoredHashIndex(0, p.Index)})
		if err != nil {
			fail("leaf %d: %v", p.Index, err)
		}
		proof := tlog.RecordProof(hashes(p.Proof))
		if err := tlog.CheckRecord(proof, p.Size, rootAt(p.Size), p.Index, leaf[0]); err != nil {
			fail("inclusion %d in %d: %v", p.Index, p.Size, err)
		}
		own, err := tlog.ProveRecord(p.Size, p.Index, hr)
		if err != nil || fmt.Sprint(own) != fmt.Sprint(proof) {
			fail("tlog's inclusion proof %d in %d differs (%v)", p.Index, p.Size, err)
		}
	}
	for _, p := range v.Consistency {
		proof := tlog.TreeProof(hashes(p.Proof))
		if err := tlog.CheckTree(proof, p.New, rootAt(p.New), p.Old, rootAt(p.Old)); err != nil {
			fail("consistency %d -> %d: %v", p.Old, p.New, err)
		}
		own, err := tlog.ProveTree(p.New, p.Old, hr)
		if err != nil || fmt.Sprint(own) != fmt.Sprint(proof) {
			fail("tlog's consistency proof %d -> %d differs (%v)", p.Old, p.New, err)
		}
	}

	// 5. A witness cosignature on the checkpoint.
	if v.Cosigned != "" {
		cn, err := note.Open([]byte(v.Cosigned), note.VerifierList(verifier))
		if err != nil {
			fail("cosigned checkpoint: %v", err)
		}
		if cn.Text != n.Text {
			fail("cosigned checkpoint has another body")
		}
		checkCosignature([]byte(v.Cosigned), v.CosignerVkey)
	}
	// 6. An offline proof bundle (c2sp.org/tlog-proof v1), parsed here from its text.
	if v.Bundle != "" {
		entry, err := base64.StdEncoding.DecodeString(v.BundleEntry)
		if err != nil {
			fail("bundle entry: %v", err)
		}
		checkBundle(v.Bundle, entry, verifier, v.CosignerVkey)
	}
	fmt.Printf("interop ok: %s size %d, %d inclusion and %d consistency proofs, proof bundle\n", origin, size, len(v.Inclusion), len(v.Consistency))
}
