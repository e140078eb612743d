# archive: make help lists the targets.
PREFIX ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
SHELL_FILES = steps/*.sh testdata/*.sh testdata/servers/*.sh testdata/bench/*.sh .ci/run

RUN_AS ?= archive
CRON_TIME ?= 30 2 * * *
VERIFY_TIME ?= 0 5 * * 0
BIN ?= archive
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib/archive
SHAREDIR = $(PREFIX)/share/archive

DOCS_MD = $(filter-out docs/presentation.md,$(wildcard docs/*.md docs/fr/*.md))
PANDOC_FLAGS = --from markdown-smart --standalone --self-contained --toc --toc-depth=1 \
	--shift-heading-level-by=-1 --css docs/pandoc/style.css --lua-filter docs/pandoc/links.lua

.PHONY: help build deps test lint demo bench clean install uninstall docs deb

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build ./archive (it finds its steps in ./steps)
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.libStepsDir=$(PREFIX)/lib/archive/steps" -o archive .

# install uses the binary already built (make build, as yourself), or builds it when missing.
archive: $(wildcard *.go) go.mod go.sum
	$(MAKE) build

deps: ## install what the tests need (as root on Debian); as another user, say what is missing
	bash testdata/deps.sh test

test: deps lint ## lint, then every test against real local servers, with -race (CI=true: a missing server fails)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" $(GO) test -race -count=1 -parallel 6 $(TESTFLAGS) ./...
	bash testdata/mail_test.sh
	bash testdata/dest_test.sh

lint: ## gofmt, go vet, shellcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@if command -v shellcheck >/dev/null; then shellcheck -x $(SHELL_FILES); \
	elif [ "$$CI" = true ]; then echo "lint: shellcheck is missing" >&2; exit 1; \
	else echo "lint: shellcheck is missing, shell files not linted (sudo apt-get install -y shellcheck)" >&2; fi

demo: ## the whole job on a local HTTPS source and a local sshd (installs missing packages as root)
	bash testdata/deps.sh demo
	bash testdata/demo.sh

bench: build ## the benchmark: 64M, 512M and 2G dumps, ~15 min as root (SIZES=64M for one); writes docs/benchmarks.md
	BENCH_ARCHIVE=$(CURDIR)/archive bash testdata/bench/run.sh $(SIZES)

docs: ## the guides' samples from real runs, diagrams to SVG (both kept in git), documents to HTML and PDF in docs/build, the slides (plantuml, pandoc, weasyprint; the samples need the test servers)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" DOCS_SAMPLES=write $(GO) test -count=1 -run TestDocSamplesComeFromRealRuns .
	plantuml -tsvg docs/diagrams/*.puml
	@for md in $(DOCS_MD); do \
	  out=docs/build/$${md#docs/}; out=$${out%.md}; mkdir -p "$$(dirname "$$out")"; \
	  echo "$$md -> $$out.html $$out.pdf"; \
	  pandoc $(PANDOC_FLAGS) --resource-path="$$(dirname "$$md")" -o "$$out.html" "$$md" && \
	  weasyprint -q "$$out.html" "$$out.pdf" || exit 1; \
	done
	@echo "docs/presentation.md -> docs/build/presentation.pdf (slides)"
	pandoc --from markdown-smart --standalone --self-contained --css docs/pandoc/slides.css --resource-path=docs \
	  -o docs/build/presentation.html docs/presentation.md
	weasyprint -q docs/build/presentation.html docs/build/presentation.pdf

clean: ## remove build outputs
	rm -rf archive build docs/build

# The files install writes besides the program. Kept here, so that the Makefile is the one place
# that knows the installed paths.
define CRON_FILE
# /etc/cron.d/archive: the nightly dump archive (written by make install).
# The log goes to [log] file. archive writes on standard error only when it cannot start (a conf
# it cannot read or parse, a log it cannot open): that alone reaches cron's mail.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# minute hour day-of-month month day-of-week  user  command
$(CRON_TIME)  $(RUN_AS)  $(BINDIR)/archive -c /etc/archive/archive.conf >/dev/null
# The scrub: every archive on the server checked against its record, once a week.
$(VERIFY_TIME)  $(RUN_AS)  $(BINDIR)/archive -c /etc/archive/archive.conf verify >/dev/null
endef

define LOGROTATE_FILE
/var/log/archive/*.log {
	monthly
	rotate 24
	compress
	delaycompress
	missingok
	notifempty
	create 0640 $(RUN_AS) $(RUN_AS)
}
endef

define SERVICE_FILE
[Unit]
Description=archive: fetch, check and archive the nightly database dump
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User=$(RUN_AS)
ExecStart=$(BINDIR)/archive -c /etc/archive/archive.conf
# 3 is a warning (an unchanged dump): reported by the log and the mail, not a failed unit.
SuccessExitStatus=3
StandardOutput=null
endef

define TIMER_FILE
[Unit]
Description=Run archive every night

[Timer]
OnCalendar=*-*-* 02:30:00
Persistent=true

[Install]
WantedBy=timers.target
endef
define VERIFY_SERVICE_FILE
[Unit]
Description=archive verify: check every archive on the server against its record
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User=$(RUN_AS)
ExecStart=$(BINDIR)/archive -c /etc/archive/archive.conf verify
# 3: archives without a record here; reported by the log and the mail, not a failed unit.
SuccessExitStatus=3
StandardOutput=null
endef

define VERIFY_TIMER_FILE
[Unit]
Description=Run archive verify every week

[Timer]
OnCalendar=Sun *-*-* 05:00:00
Persistent=true

[Install]
WantedBy=timers.target
endef
# The Debian package's control file and maintainer scripts (make deb).
DEB_VERSION ?= 1.0.0~git$(shell git rev-list --count HEAD 2>/dev/null || echo 0).$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_OUT ?= build
DEB_ROOT = $(DEB_OUT)/deb

define DEB_CONTROL
Package: archive
Version: $(DEB_VERSION)
Architecture: $(DEB_ARCH)
Maintainer: archive maintainers <archive@localhost>
Section: admin
Priority: optional
Depends: adduser, ca-certificates, coreutils, curl (>= 7.75), findutils, gzip, openssh-client, tar, util-linux
Recommends: age, cron | cron-daemon, logrotate, mutt, pigz, smbclient
Suggests: nfs-common, default-mta | mail-transport-agent
Description: nightly archive of a database dump published as a zip over HTTPS
 Fetches the dump, checks it, packs it as a dated .tgz, uploads it to one or several archive
 servers (SFTP, FTPS, WebDAV, SMB, NFS, S3), verifies every copy, prunes old archives by the
 date in their names, logs every check on one line and mails a report. Configured by
 /etc/archive/archive.conf; run nightly by /etc/cron.d/archive.
endef

define DEB_POSTINST
#!/bin/sh
# The user archive runs as, and the folders it owns (Debian policy: the user stays after purge).
set -e
if [ "$$1" = configure ]; then
	if ! getent passwd archive >/dev/null; then
		adduser --system --group --home /var/lib/archive --no-create-home --shell /usr/sbin/nologin --quiet archive
	fi
	install -d -m 700 -o archive -g archive /var/lib/archive
	install -d -m 750 -o archive -g archive /var/log/archive
	chown archive:archive /etc/archive /etc/archive/archive.conf
	chmod 750 /etc/archive
	chmod 600 /etc/archive/archive.conf
fi
endef

define DEB_POSTRM
#!/bin/sh
# purge: the state, the work folder and the log go; the conf is dpkg's (a conffile).
set -e
if [ "$$1" = purge ]; then
	rm -rf /var/lib/archive /var/log/archive
	rmdir /etc/archive 2>/dev/null || true
fi
endef

export CRON_FILE LOGROTATE_FILE SERVICE_FILE TIMER_FILE VERIFY_SERVICE_FILE VERIFY_TIMER_FILE DEB_CONTROL DEB_POSTINST DEB_POSTRM

install: $(BIN) ## install under DESTDIR/PREFIX: program, steps, conf (kept if present), cron.d, logrotate
	install -d -m 755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/steps $(DESTDIR)$(SHAREDIR)/systemd $(DESTDIR)/etc/cron.d $(DESTDIR)/etc/logrotate.d
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/archive
	install -m 755 steps/*.sh $(DESTDIR)$(LIBDIR)/steps/
	install -d -m 750 $(DESTDIR)/etc/archive
	test -e $(DESTDIR)/etc/archive/archive.conf || install -m 600 archive.conf $(DESTDIR)/etc/archive/archive.conf
	install -d -m 700 $(DESTDIR)/var/lib/archive
	install -d -m 750 $(DESTDIR)/var/log/archive
	printf '%s\n' "$$CRON_FILE" > $(DESTDIR)/etc/cron.d/archive && chmod 644 $(DESTDIR)/etc/cron.d/archive
	printf '%s\n' "$$LOGROTATE_FILE" > $(DESTDIR)/etc/logrotate.d/archive && chmod 644 $(DESTDIR)/etc/logrotate.d/archive
	printf '%s\n' "$$SERVICE_FILE" > $(DESTDIR)$(SHAREDIR)/systemd/archive.service
	printf '%s\n' "$$TIMER_FILE" > $(DESTDIR)$(SHAREDIR)/systemd/archive.timer
	printf '%s\n' "$$VERIFY_SERVICE_FILE" > $(DESTDIR)$(SHAREDIR)/systemd/archive-verify.service
	printf '%s\n' "$$VERIFY_TIMER_FILE" > $(DESTDIR)$(SHAREDIR)/systemd/archive-verify.timer
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	  id -u $(RUN_AS) >/dev/null 2>&1 || useradd --system --home-dir /var/lib/archive --shell /usr/sbin/nologin $(RUN_AS); \
	  chown $(RUN_AS): /etc/archive /etc/archive/archive.conf /var/lib/archive /var/log/archive; \
	  echo "installed; edit /etc/archive/archive.conf, then run: sudo -u $(RUN_AS) $(BINDIR)/archive check"; \
	fi

deb: ## build/archive_VERSION_ARCH.deb with dpkg-deb: the program for /usr, its steps, the conf as a conffile, cron.d, logrotate, systemd units
	rm -rf $(DEB_ROOT) && mkdir -p $(DEB_OUT)
	$(GO) build -ldflags "-X main.version=$(DEB_VERSION) -X main.libStepsDir=/usr/lib/archive/steps" -o $(DEB_OUT)/archive-usr .
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr BIN=$(DEB_OUT)/archive-usr RUN_AS=archive
	rm -rf $(DEB_ROOT)/var
	install -d -m 755 $(DEB_ROOT)/lib/systemd/system $(DEB_ROOT)/usr/share/doc/archive $(DEB_ROOT)/DEBIAN
	mv $(DEB_ROOT)/usr/share/archive/systemd/* $(DEB_ROOT)/lib/systemd/system/ && rm -rf $(DEB_ROOT)/usr/share/archive
	install -m 644 README.md docs/user-guide.md docs/technical-memo.md $(DEB_ROOT)/usr/share/doc/archive/
	chmod 644 $(DEB_ROOT)/lib/systemd/system/*
	printf '%s\n' "$$DEB_CONTROL" > $(DEB_ROOT)/DEBIAN/control
	echo "Installed-Size: $$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)" >> $(DEB_ROOT)/DEBIAN/control
	printf '/etc/archive/archive.conf\n/etc/cron.d/archive\n/etc/logrotate.d/archive\n' > $(DEB_ROOT)/DEBIAN/conffiles
	printf '%s\n' "$$DEB_POSTINST" > $(DEB_ROOT)/DEBIAN/postinst
	printf '%s\n' "$$DEB_POSTRM" > $(DEB_ROOT)/DEBIAN/postrm
	chmod 755 $(DEB_ROOT)/DEBIAN/postinst $(DEB_ROOT)/DEBIAN/postrm
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_OUT)/archive_$(DEB_VERSION)_$(DEB_ARCH).deb

uninstall: ## remove what install put (not the conf, the state, the log or the archives)
	rm -f $(DESTDIR)$(BINDIR)/archive $(DESTDIR)/etc/cron.d/archive $(DESTDIR)/etc/logrotate.d/archive
	rm -rf $(DESTDIR)$(LIBDIR) $(DESTDIR)$(SHAREDIR)
