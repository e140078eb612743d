// Command measure runs a command and reports what it cost: wall and CPU time, the peak RSS of the
// command itself and of its whole process tree, the bytes its tree wrote to the file system, the
// peak size of a work folder, which processes opened given files, and the span of each direct
// child (a step script, or a tool of the baseline).
//
//	measure -o run.txt -watch /var/tmp/work -file '/var/tmp/work/*/dump.sql' -- ./archive -c bench.conf
//
// The tree is sampled from /proc every -interval; times, CPU and bytes written are exact (wait4 and
// /proc/self/io, which count every descendant once it has been reaped). Output: key=value lines,
// then one "step=LABEL START END RSS_KIB" line per direct child, times in seconds from the start.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

type proc struct {
	ppid  int
	label string  // for a direct child of the command: the step it runs
	first float64 // seconds from the start, first and last sample it was seen in
	last  float64
	peak  int64 // direct children: peak RSS of its own subtree, KiB
}

func main() {
	out := flag.String("o", "-", "write the report here (- for standard output)")
	watch := flag.String("watch", "", "a folder whose peak size (allocated bytes, all files under it) is reported")
	interval := flag.Duration("interval", 20*time.Millisecond, "sampling interval")
	var opened files
	flag.Var(&opened, "file", "report which processes open a file whose path matches this pattern (repeatable; NAME.part counts)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: measure [-o FILE] [-watch DIR] [-file NAME]... -- COMMAND [ARG]...")
		os.Exit(2)
	}
	// The command gets them (caught here, not ignored: an ignored signal stays ignored in children).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM)
	io0 := readIO()
	busy0 := machineBusy()
	load, _ := os.ReadFile("/proc/loadavg")
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "measure: %v\n", err)
		os.Exit(127)
	}
	root := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	procs := map[int]*proc{}
	opens := map[string]bool{}
	var rootHWM, treePeak, workPeak int64
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var waitErr error
sampling:
	for {
		now := time.Since(start).Seconds()
		hwm, tree := sample(root, now, procs, opened, opens)
		rootHWM = max(rootHWM, hwm)
		treePeak = max(treePeak, tree)
		if *watch != "" {
			workPeak = max(workPeak, du(*watch))
		}
		select {
		case waitErr = <-done:
			break sampling
		case <-tick.C:
		}
	}
	wall := time.Since(start).Seconds()
	io1 := readIO()
	busy1 := machineBusy()
	exit := 0
	if waitErr != nil {
		exit = -1
		if ee, ok := waitErr.(*exec.ExitError); ok {
			exit = ee.ExitCode()
		}
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var self syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)

	var b bytes.Buffer
	fmt.Fprintf(&b, "exit=%d\nwall=%.3f\n", exit, wall)
	fmt.Fprintf(&b, "cpu_user=%.3f\ncpu_sys=%.3f\n", tv(ru.Utime), tv(ru.Stime))
	fmt.Fprintf(&b, "rss_root_kib=%d\nrss_tree_kib=%d\nrss_single_max_kib=%d\n", rootHWM, treePeak, ru.Maxrss)
	fmt.Fprintf(&b, "write_bytes=%d\ncancelled_write_bytes=%d\nread_bytes=%d\n",
		io1["write_bytes"]-io0["write_bytes"], io1["cancelled_write_bytes"]-io0["cancelled_write_bytes"], io1["read_bytes"]-io0["read_bytes"])
	fmt.Fprintf(&b, "work_peak_bytes=%d\nmachine_busy=%.2f\nsampler_cpu=%.3f\n", workPeak, busy1-busy0, tv(self.Utime)+tv(self.Stime))
	fmt.Fprintf(&b, "load_before=%s\n", strings.Join(strings.Fields(string(load))[:3], " "))
	var names []string
	for k := range opens {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "opened=%s\n", strings.Join(names, ","))
	var kids []*proc
	for _, p := range procs {
		if p.ppid == root && p.label != "" {
			kids = append(kids, p)
		}
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].first < kids[j].first })
	for _, p := range kids {
		fmt.Fprintf(&b, "step=%s %.3f %.3f %d\n", p.label, p.first, p.last, p.peak)
	}
	if err := write(*out, b.Bytes()); err != nil {
		fmt.Fprintf(os.Stderr, "measure: %v\n", err)
	}
	if exit < 0 {
		exit = 1
	}
	os.Exit(exit)
}

func write(path string, data []byte) error {
	if path == "-" {
		_, err := os.Stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// sample reads every process once: new ones for their parent, the command's tree for its RSS,
// its direct children for their label and span. It returns the command's VmHWM and the tree's
// summed RSS, in KiB.
func sample(root int, now float64, procs map[int]*proc, opened []string, opens map[string]bool) (int64, int64) {
	ents, _ := os.ReadDir("/proc")
	alive := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		alive[pid] = true
		if _, ok := procs[pid]; !ok {
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// The fields after the command name, which may hold spaces and parentheses.
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			ppid, _ := strconv.Atoi(f[1])
			procs[pid] = &proc{ppid: ppid, first: now}
		}
	}
	inTree := func(pid int) (bool, int) { // and the direct child of root it descends from
		child := 0
		for i := 0; i < 64 && pid > 1; i++ {
			if pid == root {
				return true, child
			}
			child = pid
			p, ok := procs[pid]
			if !ok {
				return false, 0
			}
			pid = p.ppid
		}
		return false, 0
	}
	var hwm, tree int64
	sub := map[int]int64{}
	for pid := range alive {
		ok, child := inTree(pid)
		if !ok {
			continue
		}
		rss, peak := status(pid)
		tree += rss
		if pid == root {
			hwm = peak
			continue
		}
		sub[child] += rss
		p := procs[pid]
		p.last = now
		if p.ppid == root {
			if l := label(pid); l != "" {
				p.label = l
			}
		}
		if len(opened) > 0 {
			watchFiles(pid, opened, opens)
		}
	}
	for child, rss := range sub {
		if p := procs[child]; p != nil {
			p.peak = max(p.peak, rss)
		}
	}
	for pid := range procs {
		if !alive[pid] && procs[pid].ppid != root {
			delete(procs, pid) // keep only the direct children, for their spans
		}
	}
	return hwm, tree
}

func status(pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// label names a direct child: "SCRIPT.sh VERB" for a step script, else the tool's name.
func label(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return ""
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	for i, a := range args {
		if strings.HasSuffix(a, ".sh") {
			l := filepath.Base(a)
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "/") {
				l += "_" + args[i+1]
			}
			return l
		}
	}
	return filepath.Base(args[0])
}

// watchFiles records "NAME:comm:r" or "NAME:comm:w" for each open descriptor on a watched file.
func watchFiles(pid int, names []string, opens map[string]bool) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, fd := range fds {
		target, err := os.Readlink(dir + "/" + fd.Name())
		if err != nil {
			continue
		}
		target = strings.TrimSuffix(target, ".part")
		for _, n := range names {
			if ok, _ := filepath.Match(n, target); !ok {
				continue
			}
			mode := "r"
			info, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
			for _, l := range strings.Split(string(info), "\n") {
				if v, ok := strings.CutPrefix(l, "flags:"); ok {
					if f, _ := strconv.ParseInt(strings.TrimSpace(v), 8, 64); f&3 != 0 {
						mode = "w"
					}
				}
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			opens[filepath.Base(target)+":"+strings.TrimSpace(string(comm))+":"+mode] = true
		}
	}
}

// du is the allocated size of every file under dir.
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// readIO is this process's /proc/self/io: its own I/O and that of every descendant it (or they)
// reaped.
func readIO() map[string]int64 {
	m := map[string]int64{}
	data, _ := os.ReadFile("/proc/self/io")
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if ok {
			m[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m
}

// machineBusy is the CPU seconds all CPUs spent not idle since boot: the command, its servers
// (the HTTPS source, sshd) and anything else running.
func machineBusy() float64 {
	data, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(data), "\n")
	var total, idle float64
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal
			total += v
		}
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return (total - idle) / 100 // USER_HZ
}
