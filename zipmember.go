package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// The zip's structure is read here, with archive/zip, behind two commands that only the steps
// call (steps/unpack.sh and steps/pack.sh): no shell tool parses a zip's directory well. Their
// exit codes are those of the step that calls them, and they speak on stderr in its name.

// Exit codes of unzip-member, unpack.sh's own.
const (
	zipNotZip      = 20
	zipCorrupt     = 21
	zipNoMember    = 22
	zipManyMembers = 23
	zipTooBig      = 24
	zipTooSmall    = 25
	zipCannotWrite = 26
	zipEncrypted   = 27
	zipMethod      = 28
)

// Exit codes of pack-member, pack.sh's own.
const (
	packFailed      = 20
	packCannotWrite = 21
	packBadArchive  = 22
)

// zipError is a failure with the step's exit code.
type zipError struct {
	code int
	msg  string
}

func (e *zipError) Error() string { return e.msg }

func zipFail(code int, format string, a ...any) error {
	return &zipError{code, fmt.Sprintf(format, a...)}
}

// stepExit prints err in the step's name and gives its code (2 for anything unplanned).
func stepExit(stepName string, err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", stepName, err)
	var ze *zipError
	if errors.As(err, &ze) {
		return ze.code
	}
	return exitUsage
}

// unzipMember: archive unzip-member [--max-size N] [--min-size N] [--reuse] ZIP NAME OUT|-
// checks the zip, inflates its one member NAME (at the root, exactly that name) with the zip's
// CRC, size and compressed length all checked, and hashes it; OUT is written (through OUT.part)
// unless it is "-", or --reuse is given and pack-member can reuse the member's data. Prints
// size, sha256, and reuse=yes or reuse=no with why=.
func unzipMember(args []string) int {
	fs := flag.NewFlagSet("unzip-member", flag.ContinueOnError)
	maxSize := fs.Int64("max-size", 64<<30, "stop past this many bytes (zip bomb guard)")
	minSize := fs.Int64("min-size", 1, "refuse a smaller member")
	reuse := fs.Bool("reuse", false, "do not write OUT when pack-member can reuse the member")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || fs.NArg() != 3 {
		why := "usage: archive unzip-member [--max-size BYTES] [--min-size BYTES] [--reuse] ZIP NAME OUT|-"
		if err != nil {
			why = err.Error() + "; " + why
		}
		fmt.Fprintln(os.Stderr, "unpack: "+why)
		return exitUsage
	}
	zipPath, name, out := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	zr, f, err := openMember(zipPath, name)
	if err != nil {
		return stepExit("unpack", err)
	}
	defer zr.Close()
	why := reusable(f)
	if out == "-" || (*reuse && why == "") {
		out = ""
	}
	size, sum, err := inflateMember(f, out, *maxSize)
	if err == nil && size < *minSize {
		err = zipFail(zipTooSmall, "the member is %d bytes, below min_size (%d bytes): the dump looks empty or truncated", size, *minSize)
	}
	if err != nil {
		if out != "" {
			os.Remove(out + ".part")
		}
		return stepExit("unpack", err)
	}
	if out != "" {
		if err := os.Rename(out+".part", out); err != nil {
			os.Remove(out + ".part")
			return stepExit("unpack", zipFail(zipCannotWrite, "cannot write %s: %v", out, plainErr(err)))
		}
	}
	fmt.Printf("size=%d\nsha256=%s\n", size, sum)
	if why == "" {
		fmt.Println("reuse=yes")
	} else {
		fmt.Printf("reuse=no\nwhy=%s\n", why)
	}
	return exitOK
}

// openMember opens the zip and finds its one member of that exact name.
func openMember(path, name string) (*zip.ReadCloser, *zip.File, error) {
	if err := zipMagic(path); err != nil {
		return nil, nil, err
	}
	zr, err := zip.OpenReader(path)
	// A member named "../x" elsewhere in the zip is no reason to refuse it: only NAME is read.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, nil, zipFail(zipCorrupt, "the zip is corrupt or truncated: its central directory is missing or damaged (%v)", err)
	}
	var found []*zip.File
	var near []string
	for _, f := range zr.File {
		switch {
		case f.Name == name:
			found = append(found, f)
		case strings.Contains(f.Name, name) && len(near) < 3:
			near = append(near, shown(f.Name))
		}
	}
	switch {
	case len(found) == 0:
		zr.Close()
		seen := ""
		if len(near) > 0 {
			seen = " (found: " + strings.Join(near, ", ") + ")"
		}
		return nil, nil, zipFail(zipNoMember, "the zip holds no member named %q at its root%s", name, seen)
	case len(found) > 1:
		zr.Close()
		return nil, nil, zipFail(zipManyMembers, "the zip holds %d members named %q; which one is the dump is ambiguous", len(found), name)
	}
	f := found[0]
	if f.Flags&0x1 != 0 {
		zr.Close()
		return nil, nil, zipFail(zipEncrypted, "the member %q is encrypted: archive never asks for a password", name)
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		zr.Close()
		return nil, nil, zipFail(zipMethod, "the member %q uses compression method %d; only stored and deflated members are read", name, f.Method)
	}
	return zr, f, nil
}

// shown is text from outside (a name in a zip or on a server, a server's message) fit for one
// line of a terminal, the log or a mail: every character that is not graphic, a line break, a
// carriage return or an escape among them, is shown as its Go escape, so that no name can
// overwrite another line or forge one.
func shown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || unicode.IsGraphic(r) {
			b.WriteRune(r)
		} else {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// zipMagic tells a zip from what a web server sends instead (an error page).
func zipMagic(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return zipFail(zipNotZip, "cannot read %s: %v", path, plainErr(err))
	}
	defer fh.Close()
	head := make([]byte, 60)
	n, _ := io.ReadFull(fh, head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return nil
	}
	start := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, string(head))
	if strings.Contains(strings.ToLower(start), "html") {
		return zipFail(zipNotZip, "not a zip: the server sent a web page (it starts with %q)", start)
	}
	return zipFail(zipNotZip, "not a zip: the file starts with %q", start)
}

// reusable says why pack-member cannot make the archive of the member's own data, or "".
func reusable(f *zip.File) string {
	switch {
	case f.Method != zip.Deflate:
		return "the member is stored, not deflated"
	case len(f.Name) >= 100:
		return "its name is 100 characters or more"
	}
	return ""
}

// countingReader counts the compressed bytes the inflater takes; a ByteReader, so that flate
// reads no further than its stream's end.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// inflateMember streams the member through its CRC and a sha256 (and into out.part when out is
// set), and proves it whole: the deflate stream ends exactly at the member's compressed size,
// with the CRC-32 and size the zip's directory records. Stricter than unzip -t: data after the
// deflate stream's end is an error too.
func inflateMember(f *zip.File, out string, maxSize int64) (int64, string, error) {
	raw, err := f.OpenRaw()
	if err != nil {
		return 0, "", zipFail(zipCorrupt, "the zip is corrupt or truncated: the member %q cannot be found where its directory says (%v)", f.Name, err)
	}
	cr := &countingReader{r: bufio.NewReaderSize(raw, 1<<20)}
	var src io.Reader = cr
	if f.Method == zip.Deflate {
		src = flate.NewReader(cr)
	}
	sum, crc := sha256.New(), crc32.NewIEEE()
	dst := io.MultiWriter(sum, crc)
	var part *os.File
	if out != "" {
		os.Remove(out + ".part")
		part, err = os.OpenFile(out+".part", os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return 0, "", zipFail(zipCannotWrite, "cannot write the extracted file in %s: %v", filepath.Dir(out), plainErr(err))
		}
		defer part.Close()
		dst = io.MultiWriter(sum, crc, &writeError{w: part})
	}
	n, err := io.CopyN(dst, src, maxSize+1)
	var we *writeError
	switch {
	case errors.As(err, &we):
		return n, "", zipFail(zipCannotWrite, "cannot write the extracted file in %s: %v", filepath.Dir(out), plainErr(we.err))
	case n > maxSize:
		return n, "", zipFail(zipTooBig, "the member expands past max_size (%d bytes); extraction stopped", maxSize)
	case err != nil && err != io.EOF:
		return n, "", zipFail(zipCorrupt, "the zip is corrupt or truncated: the member %q cannot be inflated (%v)", f.Name, err)
	}
	switch {
	case uint64(n) != f.UncompressedSize64:
		return n, "", zipFail(zipCorrupt, "the zip is corrupt: the member %q inflates to %d bytes, its directory says %d", f.Name, n, f.UncompressedSize64)
	case crc.Sum32() != f.CRC32:
		return n, "", zipFail(zipCorrupt, "the zip is corrupt: the member %q has CRC %08x, its directory says %08x (bad CRC)", f.Name, crc.Sum32(), f.CRC32)
	case uint64(cr.n) != f.CompressedSize64:
		return n, "", zipFail(zipCorrupt, "the zip is corrupt: the member %q's deflate stream ends after %d of its %d bytes", f.Name, cr.n, f.CompressedSize64)
	}
	if part != nil {
		if err := part.Close(); err != nil {
			return n, "", zipFail(zipCannotWrite, "cannot write the extracted file in %s: %v", filepath.Dir(out), plainErr(err))
		}
		// The member's own time: the same dump packs into the same archive, byte for byte.
		mtime := memberTime(f)
		os.Chtimes(out+".part", mtime, mtime)
	}
	return n, hex.EncodeToString(sum.Sum(nil)), nil
}

// writeError marks a failure of the output file, told apart from a failure of the zip.
type writeError struct {
	w   io.Writer
	err error
}

func (w *writeError) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
		return n, w
	}
	return n, nil
}

func (w *writeError) Error() string { return w.err.Error() }

// memberTime is the member's modification time, or the zip epoch when it records none.
func memberTime(f *zip.File) time.Time {
	if f.Modified.Year() < 1980 {
		return time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return f.Modified
}

// packMember: archive pack-member ZIP NAME TGZ writes TGZ as three gzip members: a tar header
// for NAME, the zip member's own deflate data with its CRC and size, and the tar's end (padding,
// two zero blocks, the 10240-byte record). Inflated, it is a plain tar of the dump; nothing is
// compressed again. The file written is read back: its size, first and last bytes are the frame
// made. Prints size and sha256.
func packMember(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "pack: usage: archive pack-member ZIP NAME TGZ")
		return exitUsage
	}
	return stepExit("pack", writeReuse(args[0], args[1], args[2]))
}

func writeReuse(zipPath, name, tgz string) error {
	zr, f, err := openMember(zipPath, name)
	if err != nil {
		return zipFail(packFailed, "cannot reuse the zip's data: %v", err)
	}
	defer zr.Close()
	if why := reusable(f); why != "" {
		return zipFail(packFailed, "cannot reuse the zip's data: %s", why)
	}
	head, tail, err := reuseFrame(f)
	if err != nil {
		return zipFail(packFailed, "cannot make the tar header: %v", err)
	}
	raw, err := f.OpenRaw()
	if err != nil {
		return zipFail(packFailed, "cannot read the member %q: %v", name, err)
	}
	if recipients := os.Getenv("ARCHIVE_RECIPIENTS"); recipients != "" {
		return writeEncrypted(io.MultiReader(bytes.NewReader(head), raw, bytes.NewReader(tail)), recipients, tgz)
	}
	out, err := os.OpenFile(tgz, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return zipFail(packCannotWrite, "cannot write the archive in %s: %v", filepath.Dir(tgz), plainErr(err))
	}
	sum := sha256.New()
	w := &writeError{w: io.MultiWriter(out, sum)}
	_, err = io.Copy(w, io.MultiReader(bytes.NewReader(head), raw, bytes.NewReader(tail)))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tgz)
		var we *writeError
		if errors.As(err, &we) || errors.Is(err, syscall.ENOSPC) {
			return zipFail(packCannotWrite, "cannot write the archive in %s: %v", filepath.Dir(tgz), plainErr(err))
		}
		return zipFail(packFailed, "cannot read the member %q: %v", name, err)
	}
	if err := framed(tgz, head, tail, int64(len(head))+int64(f.CompressedSize64)+int64(len(tail))); err != nil {
		os.Remove(tgz)
		return zipFail(packBadArchive, "the archive written is not the frame made around the zip's data: %v", err)
	}
	fmt.Printf("size=%d\nsha256=%s\n", int64(len(head))+int64(f.CompressedSize64)+int64(len(tail)), hex.EncodeToString(sum.Sum(nil)))
	return nil
}

// writeEncrypted streams the archive through age (the shell tool, fed on its standard input) into
// out: no plain copy is ever on disk. It prints the encrypted file's size and sha256, read back,
// and the plain archive's sha256, computed on the way.
func writeEncrypted(archive io.Reader, recipients, out string) error {
	var stderr bytes.Buffer
	age := exec.Command("age", "-R", recipients, "-o", out)
	age.Stderr = &stderr
	in, err := age.StdinPipe()
	if err == nil {
		err = age.Start()
	}
	if err != nil {
		return zipFail(packFailed, "cannot run age: %v", err)
	}
	plain := sha256.New()
	_, copyErr := io.Copy(in, io.TeeReader(archive, plain))
	in.Close()
	if err := age.Wait(); err != nil || copyErr != nil {
		os.Remove(out)
		said := strings.TrimSpace(strings.Split(stderr.String(), "\n")[0])
		if strings.Contains(said, "no space") {
			return zipFail(packCannotWrite, "cannot write the archive in %s: %s", filepath.Dir(out), said)
		}
		return zipFail(packFailed, "age could not encrypt the archive: %s", orUnknown(said))
	}
	fh, err := os.Open(out)
	if err != nil {
		return zipFail(packCannotWrite, "cannot read back %s: %v", out, plainErr(err))
	}
	defer fh.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, fh)
	if err != nil {
		return zipFail(packBadArchive, "cannot read back %s: %v", out, plainErr(err))
	}
	fmt.Printf("size=%d\nsha256=%s\nplain_sha256=%s\nencrypted=age\n", n, hex.EncodeToString(sum.Sum(nil)), hex.EncodeToString(plain.Sum(nil)))
	return nil
}

// reuseFrame is what goes before and after the member's deflate data.
func reuseFrame(f *zip.File) (head, tail []byte, err error) {
	size := int64(f.UncompressedSize64)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Size: size, Mode: 0o600, ModTime: memberTime(f).Truncate(time.Second),
		Uid: os.Getuid(), Gid: os.Getgid(), Format: tar.FormatGNU}
	if u, err := user.Current(); err == nil {
		hdr.Uname = u.Username
	}
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		hdr.Gname = g.Name
	}
	var block bytes.Buffer
	tw := tar.NewWriter(&block)
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, nil, err
	}
	var h bytes.Buffer
	gzipBytes(&h, block.Bytes()[:block.Len()])
	// The member's gzip header: deflate, no flags, no time, no extra flags, OS unix.
	h.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3})
	var t bytes.Buffer
	binary.Write(&t, binary.LittleEndian, f.CRC32)
	binary.Write(&t, binary.LittleEndian, uint32(f.UncompressedSize64))
	end := 512 + (size+511)/512*512 + 1024
	gzipBytes(&t, make([]byte, end-512-size+(10240-end%10240)%10240))
	return h.Bytes(), t.Bytes(), nil
}

func gzipBytes(w io.Writer, p []byte) {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
	zw.Write(p)
	zw.Close()
}

// framed reads the written archive back: its size, its first and its last bytes.
func framed(path string, head, tail []byte, size int64) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || st.Size() != size {
		return fmt.Errorf("it is not %d bytes", size)
	}
	got := make([]byte, len(head))
	if _, err := fh.ReadAt(got, 0); err != nil || !bytes.Equal(got, head) {
		return errors.New("its start differs")
	}
	got = make([]byte, len(tail))
	if _, err := fh.ReadAt(got, size-int64(len(tail))); err != nil || !bytes.Equal(got, tail) {
		return errors.New("its end differs")
	}
	return nil
}
