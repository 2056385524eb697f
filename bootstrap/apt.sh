# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# apt: Python from Ubuntu or the deadsnakes PPA, and the extra packages of WORKER_APT_PACKAGES.
# Ubuntu's own archive comes first (24.04 ships python3.12); the PPA only for a Python the
# release does not ship (3.8 on 22.04). Either way pythonX.Y-venv comes too: it holds ensurepip.
# Fresh Azure VMs run unattended-upgrades at boot, which holds the dpkg lock: every apt-get
# waits for it (DPkg::Lock::Timeout) and transient failures are retried (retry in common.sh).

readonly DEADSNAKES_FINGERPRINT=F23C5A6CF475977595C89F51BA6932366A755776
readonly DEADSNAKES_KEY_URL="https://keyserver.ubuntu.com/pks/lookup?op=get&options=mr&search=0x$DEADSNAKES_FINGERPRINT"
readonly DEADSNAKES_REPO=https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu
readonly APT_KEYRINGS=/etc/apt/keyrings
readonly DEADSNAKES_KEYRING=$APT_KEYRINGS/deadsnakes.gpg
readonly DEADSNAKES_LIST=/etc/apt/sources.list.d/deadsnakes.list

APT_UPDATED=0

# os_field KEY: a field of os-release into REPLY (empty when absent); the file is not sourced.
os_field() {
  local line
  REPLY=""
  [[ -r $OS_RELEASE ]] || return 0
  while IFS= read -r line; do
    if [[ $line == "$1="* ]]; then
      REPLY=${line#*=}
      REPLY=${REPLY//\"/}
    fi
  done <"$OS_RELEASE"
}

apt_get() {
  retry run env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
    -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" "$@"
}

apt_install() {
  if ((!APT_UPDATED)); then
    apt_get update
    APT_UPDATED=1
  fi
  apt_get install --no-install-recommends "$@"
}

has_candidate() {
  apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
}

from_apt() {
  os_field ID
  if [[ $REPLY != ubuntu ]]; then
    TRIED+=("apt (Ubuntu only; this is ${REPLY:-unknown})")
    return 1
  fi
  TRIED+=("apt (Ubuntu's archive, else the deadsnakes PPA)")
  step apt-python "$EXIT_APT" install_python_from_apt
  probe "/usr/bin/python$PY_VERSION" && return 0
  if ((DRY_RUN)); then
    PYTHON=/usr/bin/python$PY_VERSION PYTHON_ID="(dry run: not installed yet)"
    return 0
  fi
  return 1
}

install_python_from_apt() {
  if has_candidate "python$PY_VERSION"; then
    log "python$PY_VERSION from Ubuntu's own archive"
  else
    log "python$PY_VERSION is not in this release's archive: from the deadsnakes PPA"
    add_deadsnakes
  fi
  apt_install "python$PY_VERSION" "python$PY_VERSION-venv"
}

add_deadsnakes() {
  local line
  os_field VERSION_CODENAME
  [[ -n $REPLY ]] || die "no VERSION_CODENAME in $OS_RELEASE for the deadsnakes PPA"
  line="deb [signed-by=$DEADSNAKES_KEYRING] $DEADSNAKES_REPO $REPLY main"
  [[ -s $DEADSNAKES_KEYRING ]] || fetch_deadsnakes_key
  if [[ ! -f $DEADSNAKES_LIST || $(<"$DEADSNAKES_LIST") != "$line" ]]; then
    run write_file "$DEADSNAKES_LIST" "$line"
    APT_UPDATED=0
  fi
}

# The PPA's key into a keyring of its own (signed-by, not apt-key), checked by fingerprint.
fetch_deadsnakes_key() {
  local armored=/tmp/deadsnakes-$$.asc
  run install -d -m 0755 "$APT_KEYRINGS"
  retry run curl -fsSL --max-time 60 -o "$armored" "$DEADSNAKES_KEY_URL"
  if ((DRY_RUN)); then
    printf 'DRY-RUN: (check that %s has fingerprint %s)\n' "$armored" "$DEADSNAKES_FINGERPRINT"
  elif ! gpg --batch --show-keys --with-colons "$armored" | grep -q "^fpr:*$DEADSNAKES_FINGERPRINT:"; then
    die "the key from $DEADSNAKES_KEY_URL is not $DEADSNAKES_FINGERPRINT"
  fi
  run gpg --batch --yes --dearmor -o "$DEADSNAKES_KEYRING" "$armored"
  run rm -f "$armored"
}

install_apt_packages() {
  local package missing=()
  for package in "${APT_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null) == "ii " ]] ||
      missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    log "apt packages already installed: ${APT_PACKAGES[*]}"
    return 0
  fi
  command -v apt-get >/dev/null || die "WORKER_APT_PACKAGES needs apt-get, which is missing"
  apt_install "${missing[@]}"
}
