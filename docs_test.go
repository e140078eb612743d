package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The documents are graded like the program: these tests keep them in step with the code. They
// read the Markdown only (no pandoc, no plantuml, no network).

// docPair is one document in English and its French version.
type docPair struct {
	en, fr string
}

var (
	guides = docPair{"docs/user-guide.md", "docs/fr/guide-utilisateur.md"}
	memos  = docPair{"docs/technical-memo.md", "docs/fr/memoire-technique.md"}
)

// mdTable is one Markdown table: its header cells, its body rows, and the heading it stands under.
type mdTable struct {
	heading string
	header  []string
	rows    [][]string
}

// mdDoc is what the tests need of a Markdown file: its headings' depths in order, its tables,
// its text outside code blocks, and the targets of its links and images.
type mdDoc struct {
	depths []int
	tables []mdTable
	text   string
	links  []string
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

func readDoc(t *testing.T, path string) mdDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read %s: %v", path, err)
	}
	var d mdDoc
	var text strings.Builder
	heading, inCode := "", false
	var table *mdTable
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		text.WriteString(line + "\n")
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			d.links = append(d.links, m[1])
		}
		if m := regexp.MustCompile(`^(#+) `).FindStringSubmatch(line); m != nil {
			d.depths = append(d.depths, len(m[1]))
			heading = line
			continue
		}
		if !strings.HasPrefix(line, "|") {
			table = nil
			continue
		}
		cells := splitRow(line)
		switch {
		case table == nil:
			d.tables = append(d.tables, mdTable{heading: heading, header: cells})
			table = &d.tables[len(d.tables)-1]
		case isRule(cells):
		default:
			table.rows = append(table.rows, cells)
		}
	}
	d.text = text.String()
	return d
}

// splitRow splits "| a | b \| c |" into its trimmed cells; an escaped pipe stays in its cell.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

func isRule(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(c, ":-") != "" || c == "" {
			return false
		}
	}
	return true
}

// confFileKeys reads archive.conf: every "key = value" and ";key = value" line under its
// [section], as section, key and value.
func confFileKeys(t *testing.T) [][3]string {
	t.Helper()
	data, err := os.ReadFile("archive.conf")
	if err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`^;?\s*([a-z_]+)\s*=\s*(.*)$`)
	var keys [][3]string
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			continue
		}
		if m := keyRE.FindStringSubmatch(line); m != nil && section != "" {
			keys = append(keys, [3]string{section, m[1], m[2]})
		}
	}
	if len(keys) < 50 {
		t.Fatalf("read only %d keys from archive.conf; is its format still \"key = value\" under [section]?", len(keys))
	}
	return keys
}

// referenceRows gives the (section, key) pairs of the conf reference tables: the tables whose
// header starts with "section | key" (English) or "section | clé" (French).
func referenceRows(d mdDoc) map[[2]string]bool {
	rows := map[[2]string]bool{}
	for _, tb := range d.tables {
		if len(tb.header) < 2 || tb.header[0] != "section" || (tb.header[1] != "key" && tb.header[1] != "clé") {
			continue
		}
		for _, r := range tb.rows {
			if len(r) >= 2 {
				rows[[2]string{r[0], strings.Trim(r[1], "`")}] = true
			}
		}
	}
	return rows
}

func TestEveryConfKeyIsInBothReferenceTables(t *testing.T) {
	for _, path := range []string{guides.en, guides.fr} {
		rows := referenceRows(readDoc(t, path))
		if len(rows) == 0 {
			t.Errorf("%s has no reference table (a table whose header starts with \"section | key\")", path)
			continue
		}
		for _, ck := range confKeys {
			if !rows[[2]string{ck.s, ck.k}] {
				t.Errorf("%s: the reference table has no row for [%s] %s", path, ck.s, ck.k)
			}
		}
	}
}

// programExitCodes reads the exit* constants of archive.go.
func programExitCodes(t *testing.T) map[string]int {
	t.Helper()
	data, err := os.ReadFile("archive.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(exit[A-Za-z]+)\s*=\s*(\d+)`).FindAllStringSubmatch(string(data), -1) {
		n, _ := strconv.Atoi(m[2])
		codes[m[1]] = n
	}
	if len(codes) < 5 {
		t.Fatalf("found only %d exit constants in archive.go", len(codes))
	}
	return codes
}

// exitCodeTables gives the codes in the first column of the tables under a heading that names the
// exit codes ("Exit codes", "Codes de sortie"), and how many such tables there are.
func exitCodeTables(d mdDoc) (map[int]bool, int) {
	codes, n := map[int]bool{}, 0
	for _, tb := range d.tables {
		h := strings.ToLower(tb.heading)
		if !strings.Contains(h, "exit codes") && !strings.Contains(h, "codes de sortie") {
			continue
		}
		if len(tb.header) == 0 || tb.header[0] != "code" {
			continue
		}
		n++
		for _, r := range tb.rows {
			if c, err := strconv.Atoi(r[0]); err == nil {
				codes[c] = true
			}
		}
	}
	return codes, n
}

func TestEveryExitCodeIsInEachExitCodeTable(t *testing.T) {
	consts := programExitCodes(t)
	for _, c := range []struct {
		path     string
		required bool
	}{{guides.en, true}, {guides.fr, true}, {memos.en, false}, {memos.fr, false}} {
		found, tables := exitCodeTables(readDoc(t, c.path))
		if tables == 0 {
			if c.required {
				t.Errorf("%s has no exit-code table (a \"code | ...\" table under an \"Exit codes\" heading)", c.path)
			}
			continue
		}
		for name, code := range consts {
			if !found[code] {
				t.Errorf("%s: exit code %d (%s) is missing from its exit-code table", c.path, code, name)
			}
		}
		for code := range found {
			known := false
			for _, v := range consts {
				known = known || v == code
			}
			if !known {
				t.Errorf("%s: its exit-code table lists %d, which archive.go does not define", c.path, code)
			}
		}
	}
}

func TestEveryStepScriptIsNamedInBothMemos(t *testing.T) {
	scripts, err := filepath.Glob("steps/*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no step scripts found: %v", err)
	}
	for _, path := range []string{memos.en, memos.fr} {
		text := readDoc(t, path).text
		for _, s := range scripts {
			if !strings.Contains(text, filepath.Base(s)) {
				t.Errorf("%s does not name %s", path, filepath.Base(s))
			}
		}
	}
}

func TestFrenchDocumentsHaveTheEnglishHeadingStructure(t *testing.T) {
	for _, p := range []docPair{guides, memos} {
		en, fr := readDoc(t, p.en).depths, readDoc(t, p.fr).depths
		if len(en) != len(fr) {
			t.Errorf("%s has %d headings, %s has %d", p.en, len(en), p.fr, len(fr))
		}
		for i := 0; i < min(len(en), len(fr)); i++ {
			if en[i] != fr[i] {
				t.Errorf("heading %d is level %d in %s but level %d in %s", i+1, en[i], p.en, fr[i], p.fr)
				break
			}
		}
	}
}

func TestDocumentsLinkOnlyToFilesThatExist(t *testing.T) {
	for _, path := range []string{guides.en, guides.fr, memos.en, memos.fr} {
		for _, link := range readDoc(t, path).links {
			if strings.Contains(link, "://") || strings.HasPrefix(link, "#") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			target, _, _ := strings.Cut(link, "#")
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", path, link)
			}
		}
	}
}

// The memos' file tables give each file's length; a file that grew or shrank by more than a
// tenth since is a memo that no longer describes the code.
func TestMemoLineCountsAreNearTheFiles(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| (\\d+) \\|")
	for _, path := range []string{memos.en, memos.fr} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rows := row.FindAllStringSubmatch(string(data), -1)
		if len(rows) < 20 {
			t.Fatalf("%s: only %d rows of \"| `file` | lines |\"; is the file table still there?", path, len(rows))
		}
		for _, m := range rows {
			body, err := os.ReadFile(m[1])
			if err != nil {
				t.Errorf("%s names %s, which cannot be read: %v", path, m[1], err)
				continue
			}
			said, _ := strconv.Atoi(m[2])
			real := strings.Count(string(body), "\n")
			if d := real - said; d*10 > said || -d*10 > said {
				t.Errorf("%s says %s has %d lines; it has %d", path, m[1], said, real)
			}
		}
	}
}

// Every function the memos name as `name()` or `type.name()` is one the program defines (the
// tests' need() and the standard library's os.Executable aside): a renamed function leaves no
// stale name behind.
func TestMemosNameOnlyFunctionsThatExist(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	defined := map[string]bool{"Executable": true, "need": true}
	decl := regexp.MustCompile(`(?m)^func (?:\([^)]*\) )?([A-Za-z0-9_]+)\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(data), -1) {
			defined[m[1]] = true
		}
	}
	named := regexp.MustCompile("`(?:[a-zA-Z]+\\.)?([a-zA-Z][A-Za-z0-9_]*)\\(\\)`")
	for _, path := range []string{memos.en, memos.fr} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(data), -1) {
			if !defined[m[1]] {
				t.Errorf("%s names %s, which no Go file defines", path, m[0])
			}
		}
	}
}
