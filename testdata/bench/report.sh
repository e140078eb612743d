#!/usr/bin/env bash
# report.sh: the benchmark's tables, from the results run.sh left, as Markdown.
#
# Usage: report.sh BENCH_DIR DOC   prints the tables, and rewrites the part of DOC between the
#                                  "bench:begin" and "bench:end" comments (DOC "-": print only)
# Exit codes: 0 done, 2 usage or no results.
set -euo pipefail

get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }

# mib BYTES|KIB unit: MiB with one decimal.
mib() { awk -v v="${1:-0}" -v d="$2" 'BEGIN { printf "%.1f", v / d }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# steps FILE: the wall seconds of each check, from measure's step lines.
steps() {
  awk '/^step=/ {
      sub(/^step=/, ""); l = $1; d = $3 - $2
      c = "other"
      if (l == "fetch.sh_probe") c = "url"; else if (l == "fetch.sh_get") c = "download"
      else if (l == "unpack.sh") c = "zip"; else if (l == "pack.sh") c = "pack"
      else if (l == "dest-sftp.sh_check") c = "conn"; else if (l == "dest-sftp.sh_put") c = "put"
      else if (l == "dest-sftp.sh_verify") c = "verify"
      t[c] += d
    }
    /^wall=/ { sub(/^wall=/, ""); wall = $0 }
    END {
      n = split("url download zip pack conn put verify other", k, " ")
      for (i = 1; i <= n; i++) printf "| %s ", (k[i] in t) ? sprintf("%.2f", t[k[i]]) : "-"
      printf "| %.2f |\n", wall
    }' "$1"
}

# mark VALUE OP LIMIT: VALUE, then a check mark when VALUE OP LIMIT holds, a cross when not.
mark() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == "<=") ? v <= l : v == l; printf "%s %s", v, ok ? "✓" : "✗" }'; }

# targets DIR...: issue 7's targets, run by run.
targets() {
  local dir size f r floor base limit reads u
  echo "| dump | run | ÷ floor (≤ 1.3 at 512 MiB and up) | ÷ sequential (≤ 0.5) | RSS archive (≤ 20 MiB) | unchanged: packed, uploaded (none) | dump reads after extraction (≤ 1) | work dir peak ÷ (zip + sql + tgz) (≤ 1) |"
  echo "|---|---|--:|--:|--:|---|--:|--:|"
  for dir; do
    size=${dir##*/} floor=$(get "$dir/floor.txt" wall) base=$(get "$dir/baseline.txt" wall)
    for r in archive reuse proposed; do
      f=$dir/$r.txt
      [[ -f $f ]] || continue
      limit=$(awk -v z="$(get "$dir/info.txt" zip_bytes)" -v s="$(get "$dir/info.txt" sql_bytes)" -v t="$(get "$f" tgz_bytes)" \
        -v p="$(get "$f" work_peak_bytes)" 'BEGIN { printf "%.2f", p / (z + s + t) }')
      reads=$(get "$f" opened | tr ',' '\n' | grep -c ':r$' || true)
      u=$(grep -cE '^step=(pack\.sh|dest-sftp\.sh_put) ' "$dir/$r-unchanged.txt" || true)
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$r" \
        "$(if (($(get "$dir/info.txt" sql_bytes) >= 512 << 20)); then mark "$(ratio "$(get "$f" wall)" "$floor")" "<=" 1.3; else ratio "$(get "$f" wall)" "$floor"; fi)" \
        "$(mark "$(ratio "$(get "$f" wall)" "$base")" "<=" 0.5)" \
        "$(if get "$f" cmd | grep -q '/archive -c'; then mark "$(mib "$(get "$f" rss_root_kib)" 1024)" "<=" 20; else echo "(steps)"; fi)" \
        "$( ((u == 0)) && echo "none ✓ ($(get "$dir/$r-unchanged.txt" wall) s)" || echo "$u ✗")" \
        "$(mark "$reads" "<=" 1)" "$(mark "$limit" "<=" 1)"
    done
  done
}

tables() {
  local bench=$1 dir size r f base floor who
  local sizes=()
  for dir in "$bench"/results/*/; do
    [[ -f $dir/info.txt ]] && sizes+=("$(get "$dir/info.txt" sql_bytes) ${dir%/}")
  done
  ((${#sizes[@]})) || { echo "report: no results in $bench/results" >&2; exit 2; }
  mapfile -t sizes < <(printf '%s\n' "${sizes[@]}" | sort -n | cut -d' ' -f2-)

  echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM,"
  # shellcheck disable=SC1091 # the machine's own file, read for its name
  echo "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r); $(curl --version | head -n 1 | cut -d' ' -f1-2),"
  echo "$(unzip -v | head -n 1 | cut -d' ' -f1-2), $(pigz --version 2>&1), $(rsync --version | head -n 1 | awk '{ print $1, $3 }'),"
  echo "$(openssl version | cut -d' ' -f1-2), $(sha256sum --version | head -n 1). Page cache warm (24 GiB of RAM hold every file)."
  echo
  targets "${sizes[@]}"
  echo
  echo "| dump | run | wall s | ÷ sequential | ÷ floor | CPU s | RSS archive MiB | RSS tree MiB | largest process MiB | written MiB | work dir peak MiB | dump file opened by | exit |"
  echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|"
  for dir in "${sizes[@]}"; do
    size=${dir##*/} base=$(get "$dir/baseline.txt" wall) floor=$(get "$dir/floor.txt" wall)
    for r in baseline floor archive archive-unchanged verify-download encrypted two-destinations reuse reuse-unchanged proposed proposed-unchanged; do
      f=$dir/$r.txt
      [[ -f $f ]] || continue
      who="-"
      if get "$f" cmd | grep -q '/archive -c'; then who=$(mib "$(get "$f" rss_root_kib)" 1024); fi
      printf '| %s | %s%s | %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$r" \
        "$(get "$f" cmd | grep -q flow.sh && echo ' (steps)')" "$(get "$f" wall)" "$(ratio "$(get "$f" wall)" "$base")" \
        "$(ratio "$(get "$f" wall)" "$floor")" "$(awk -v u="$(get "$f" cpu_user)" -v s="$(get "$f" cpu_sys)" 'BEGIN { print u + s }')" \
        "$who" "$(mib "$(get "$f" rss_tree_kib)" 1024)" "$(mib "$(get "$f" rss_single_max_kib)" 1024)" \
        "$(mib "$(get "$f" write_bytes)" 1048576)" "$(mib "$(get "$f" work_peak_bytes)" 1048576)" \
        "$(get "$f" opened | sed 's/dump\.sql://g; s/,/ /g')" "$(get "$f" exit)$([[ $(get "$f" proof) == ok ]] && echo ', proved')"
    done
  done
  echo
  echo "Wall seconds of each check (a step script's span, sampled every 20 ms):"
  echo
  echo "| dump | run | url | download | zip-content | archive | connection | put | verify | other | whole run |"
  echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
  for dir in "${sizes[@]}"; do
    for r in archive archive-unchanged verify-download encrypted two-destinations reuse reuse-unchanged proposed proposed-unchanged; do
      [[ -f $dir/$r.txt ]] && printf '| %s | %s %s' "${dir##*/}" "$r" "$(steps "$dir/$r.txt")" && echo
    done
  done
  echo
  echo "The baselines, command by command (wall seconds):"
  echo
  echo "| dump | zip MiB | curl -o | unzip | sha256sum | tar czf | rsync | sequential | curl -o /dev/null | unzip -p \\| sha256sum | rsync | floor |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
  for dir in "${sizes[@]}"; do
    f=$dir/baseline.out
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${dir##*/}" "$(mib "$(get "$dir/info.txt" zip_bytes)" 1048576)" \
      "$(get "$f" t_curl)" "$(get "$f" t_unzip)" "$(get "$f" t_sha256sum)" "$(get "$f" t_tar)" "$(get "$f" t_rsync)" \
      "$(get "$dir/baseline.txt" wall)" "$(get "$dir/floor.out" t_curl)" "$(get "$dir/floor.out" t_unzip_sha256sum)" \
      "$(get "$dir/floor.out" t_rsync)" "$(get "$dir/floor.txt" wall)"
  done
  echo
  echo "When: $(for dir in "${sizes[@]}"; do printf '%s %s (load %s); ' "${dir##*/}" "$(get "$dir/info.txt" date)" "$(get "$dir/archive.txt" load_before)"; done)"
  local busy=0
  for dir in "${sizes[@]}"; do busy=$((busy + $(grep -l '^quiet_wait=busy' "$dir"/*.txt | wc -l))); done
  echo "Each run first waited for a second with the CPUs 80 % idle (20 s at most, 180 s in all); runs that never got one: $busy."
}

main() {
  [[ $# == 2 && -d $1 ]] || { echo "usage: report.sh BENCH_DIR DOC" >&2; exit 2; }
  local out
  out=$(tables "$1")
  printf '%s\n' "$out"
  [[ $2 != - ]] || return 0
  if [[ ! -f $2 ]] || ! grep -q '<!-- bench:begin' "$2"; then
    printf '# Benchmarks\n\n<!-- bench:begin -->\n<!-- bench:end -->\n' >>"$2"
  fi
  awk -v f=<(printf '%s\n' "$out") '
    /<!-- bench:begin/ { print; print "<!-- generated by testdata/bench/run.sh (make bench); edits between these lines are lost -->"; print ""
                         while ((getline l < f) > 0) print l; print ""; skip = 1; next }
    /<!-- bench:end/ { skip = 0 }
    !skip' "$2" >"$2.tmp"
  mv -- "$2.tmp" "$2"
  echo "report: rewrote the generated part of $2"
}

main "$@"
