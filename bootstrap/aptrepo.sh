# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# Third-party apt repositories, declared in apt-sources.json (checked and planned by
# aptsources.py): each signing key checked by fingerprint and kept in a keyring of its own, a
# deb822 source that trusts that keyring alone (never apt-key), only that repository's index
# fetched, its packages installed with the environment they need (ACCEPT_EULA=Y).
#
# What can fail is tried first in a staging directory: the key, the index (fetched into a
# staging lists directory, with apt seeing that repository alone) and the packages. Only then
# are the keyring, the .sources file and the index put in place, so a refused key, an
# unreachable repository or a missing package leaves the machine as it was. A failed install
# puts the sources and keyrings back as they were.

readonly APT_REPO_PREFIX=worker-
# Index or signature trouble that means "not signed by the declared key", not "unreachable".
readonly APT_SIGNATURE_RE='GPG error|NO_PUBKEY|BADSIG|EXPKEYSIG|REVKEYSIG|is not signed|signatures were invalid'

# The plan, one entry per declared repository (read_apt_plan).
REPO_NAME=() REPO_FPR=() REPO_KEYRING=() REPO_KEY_KIND=() REPO_KEY=() REPO_URIS=()
REPO_PACKAGES=() REPO_INSTALLS=() REPO_SOURCE=()
APT_CHANGED=()     # the entries this run sets up (the others are up to date)
APT_STAGE=""       # the staging directory of this run
APT_LISTS_DIR=""   # apt's Dir::State::Lists
APT_PARTS_DIR=""   # apt's Dir::Etc::sourceparts
STAGED_OPTS=()     # apt options that see one staged repository only
UNDO_RESTORE=()    # files this run replaced, restored from $APT_STAGE/backup on failure
UNDO_REMOVE=()     # files this run created, removed on failure

# The whole apt-sources.json flow; each part is a step with its own exit code.
apt_repositories() {
  local i
  step apt-repo-plan "$EXIT_CONFIG" plan_apt_repositories
  ((${#APT_CHANGED[@]})) || return 0
  for i in "${APT_CHANGED[@]}"; do
    log "repository ${REPO_NAME[i]}: staging"
    step apt-repo-key "$EXIT_APT_KEY" stage_key "$i"
    step apt-repo-index "$EXIT_APT_REPO" stage_index "$i"
    step apt-repo-check "$EXIT_APT_PACKAGE" check_repo_packages "$i"
  done
  step apt-repo-commit "$EXIT_APT" commit_repositories
  step apt-repo-install "$EXIT_APT" install_repo_packages
  finish_apt_repositories
}

plan_apt_repositories() {
  local i current=()
  command -v apt-get >/dev/null || die "$APT_SOURCES needs apt-get, which is missing"
  eval "$(apt-config shell APT_LISTS_DIR Dir::State::Lists/d APT_PARTS_DIR Dir::Etc::sourceparts/d)"
  read_apt_plan
  for i in "${!REPO_NAME[@]}"; do
    if repo_is_current "$i"; then current+=("${REPO_NAME[i]}"); else APT_CHANGED+=("$i"); fi
  done
  if ((${#current[@]})); then
    log "apt repositories up to date: ${current[*]}"
  fi
  if ((${#APT_CHANGED[@]})); then
    ((DRY_RUN || EUID == 0)) ||
      die "$APT_SOURCES needs root to set up its repositories: run the start task as admin"
    start_stage
  fi
}

# The declaration, checked and planned by aptsources.py, into the REPO_* arrays.
read_apt_plan() {
  local out line fields i=-1
  if [[ ! -x $PYTHON ]]; then
    printf 'DRY-RUN: (read %s with %s once it is installed)\n' "$APT_SOURCES" "$PYTHON"
    return 0
  fi
  out=$("$PYTHON" -I "$BOOTSTRAP_DIR/aptsources.py" plan --keyrings "$APT_KEYRINGS" "$APT_SOURCES" 2>&1) ||
    die "${out##*$'\n'}"
  while IFS= read -r line; do
    IFS=$'\t' read -r -a fields <<<"$line"
    case ${fields[0]:-} in
      repo)
        i=$((i + 1))
        REPO_NAME[i]=${fields[1]} REPO_FPR[i]=${fields[2]} REPO_KEYRING[i]=${fields[3]}
        REPO_KEY_KIND[i]=${fields[4]} REPO_KEY[i]=${fields[5]} REPO_INSTALLS[i]="" REPO_SOURCE[i]=""
        ;;
      uris) REPO_URIS[i]=${fields[1]} ;;
      packages) REPO_PACKAGES[i]=${fields[1]} ;;
      install) REPO_INSTALLS[i]+=${line#install$'\t'}$'\n' ;;
      source) REPO_SOURCE[i]+=${REPO_SOURCE[i]:+$'\n'}${line#source$'\t'} ;;
    esac
  done <<<"$out"
}

# True when entry $1 is set up as declared: its .sources file is the one the plan renders (the
# stamp in it covers the whole declaration), its keyring exists and its packages are installed.
repo_is_current() {
  local i=$1 file packages
  file=$APT_PARTS_DIR$APT_REPO_PREFIX${REPO_NAME[i]}.sources
  [[ -f $file && -s ${REPO_KEYRING[i]} && $(<"$file") == "${REPO_SOURCE[i]}" ]] || return 1
  read -r -a packages <<<"${REPO_PACKAGES[i]}"
  all_installed "${packages[@]}"
}

all_installed() {
  local status line
  status=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "$@" 2>/dev/null) || return 1
  while IFS= read -r line; do
    [[ $line == "ii " ]] || return 1
  done <<<"$status"
}

# /tmp rather than $TMPDIR: apt's unprivileged _apt user must reach the staged keyrings.
start_stage() {
  if ((DRY_RUN)); then
    APT_STAGE=/tmp/worker-apt.XXXXXX
    printf 'DRY-RUN: mktemp -d %s\n' "$APT_STAGE"
    return 0
  fi
  APT_STAGE=$(mktemp -d /tmp/worker-apt.XXXXXX)
  CLEANUPS+=(undo_apt_repositories)
  chmod 0755 "$APT_STAGE"
  mkdir -m 0700 "$APT_STAGE/gnupg"
  mkdir "$APT_STAGE/lists" "$APT_STAGE/backup"
}

# The repository's key: fetched (or read beside the declaration), refused unless it is exactly
# the declared key, then dearmored (a binary key passes through unchanged) into the staged
# keyring. gpg runs in a throwaway home: root's keyring is never touched, no agent starts.
stage_key() {
  local i=$1
  local name=${REPO_NAME[i]} file=${REPO_KEY[i]}
  if [[ ${REPO_KEY_KIND[i]} == url ]]; then
    file=$APT_STAGE/$name.key
    retry run curl -fsSL --proto '=https,http' --max-time 60 -o "$file" "${REPO_KEY[i]}" ||
      fail "$EXIT_APT_REPO" "cannot fetch the key of repository '$name' from ${REPO_KEY[i]}; nothing changed"
  fi
  check_key "$i" "$file"
  run gpg --homedir "$APT_STAGE/gnupg" --batch --no-autostart --yes --dearmor \
    --output "$APT_STAGE/$name.gpg" "$file"
  run chmod 0644 "$APT_STAGE/$name.gpg"
}

# Accept the key file only if it holds one primary key, with the declared fingerprint.
check_key() {
  local i=$1 file=$2 listing record prev="" found=() where
  where="the key of repository '${REPO_NAME[i]}' (${REPO_KEY[i]})"
  if ((DRY_RUN)); then
    printf 'DRY-RUN: (check that %s is one key, %s)\n' "$file" "${REPO_FPR[i]}"
    return 0
  fi
  listing=$(gpg --homedir "$APT_STAGE/gnupg" --batch --no-autostart --with-colons --show-keys "$file" 2>/dev/null) || listing=""
  while IFS=: read -r -a record; do
    if [[ ${record[0]:-} == fpr && $prev == pub ]]; then found+=("${record[9]}"); fi
    prev=${record[0]:-}
  done <<<"$listing"
  if ((${#found[@]} == 0)); then
    fail "$EXIT_APT_KEY" "$where is not an OpenPGP public key; nothing changed"
  elif ((${#found[@]} > 1)); then
    fail "$EXIT_APT_KEY" "$where holds ${#found[@]} keys (${found[*]}), not the declared ${REPO_FPR[i]} alone; nothing changed"
  elif [[ ${found[0]} != "${REPO_FPR[i]}" ]]; then
    fail "$EXIT_APT_KEY" "$where has fingerprint ${found[0]}, not the declared ${REPO_FPR[i]}; nothing changed"
  fi
  log "repository ${REPO_NAME[i]}: key ${found[0]} matches the declared fingerprint"
}

# apt options that see staged entry $1 alone: its staged source (signed by its staged
# keyring), the staging lists directory, no cache files written.
staged_apt_options() {
  STAGED_OPTS=(
    -o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$APT_STAGE/${REPO_NAME[$1]}"
    -o "Dir::State::Lists=$APT_STAGE/lists" -o "APT::Get::List-Cleanup=0"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  )
}

# Fetch the repository's index into the staging lists, trusting the staged keyring only.
stage_index() {
  local i=$1 text
  local name=${REPO_NAME[i]}
  text=${REPO_SOURCE[i]//"${REPO_KEYRING[i]}"/"$APT_STAGE/$name.gpg"}
  run mkdir -p "$APT_STAGE/$name"
  run write_file "$APT_STAGE/$name/$APT_REPO_PREFIX$name.sources" "$text"
  retry update_staged "$i" && return 0
  first_problem "$APT_STAGE/update.err"
  if [[ $REPLY =~ $APT_SIGNATURE_RE ]]; then
    fail "$EXIT_APT_KEY" "repository '$name' is not signed by the declared key ${REPO_FPR[i]}: $REPLY; nothing changed"
  fi
  fail "$EXIT_APT_REPO" "repository '$name' is unreachable: $REPLY; nothing changed"
}

# apt-get update of one staged repository; any warning fails it (apt before 2.1 exits 0 when
# an index could not be fetched). Its stderr stays in $APT_STAGE/update.err.
update_staged() {
  local rc=0 errors=$APT_STAGE/update.err
  staged_apt_options "$1"
  if ((DRY_RUN)); then
    run apt-get -q "${STAGED_OPTS[@]}" update
    return 0
  fi
  run apt-get -q "${STAGED_OPTS[@]}" update 2>"$errors" || rc=$?
  cat "$errors" >&2
  if ((rc == 0)) && grep -Eq '^(W|E):' "$errors"; then rc=1; fi
  return "$rc"
}

# apt's first warning or error in file $1, without its W:/E: tag, into REPLY.
first_problem() {
  REPLY=$(grep -E -m1 '^(W|E):' "$1" || true)
  REPLY=${REPLY#?: }
  REPLY=${REPLY%.}
  [[ -n $REPLY ]] || REPLY="apt-get update failed"
}

# Every declared package must be in the staged index of its own repository.
check_repo_packages() {
  local i=$1 packages missing=() offered=" " out line package
  local name=${REPO_NAME[i]}
  read -r -a packages <<<"${REPO_PACKAGES[i]}"
  if ((DRY_RUN)); then
    printf 'DRY-RUN: (check that repository %s has %s)\n' "$name" "${packages[*]}"
    return 0
  fi
  staged_apt_options "$i"
  out=$(apt-cache "${STAGED_OPTS[@]}" -o Dir::State::status=/dev/null madison "${packages[@]}")
  while IFS='|' read -r line _; do
    offered+="${line// /} "
  done <<<"$out"
  for package in "${packages[@]}"; do
    [[ $offered == *" $package "* ]] || missing+=("$package")
  done
  if ((${#missing[@]})); then
    printf -v line '%s, ' "${missing[@]}"
    fail "$EXIT_APT_PACKAGE" "repository '$name' (${REPO_URIS[i]}) has no package ${line%, }; nothing changed"
  fi
  log "repository $name has ${packages[*]}"
}

# Put the checked keyrings, sources and indexes in place, remembering how to undo it.
commit_repositories() {
  local i
  run install -d -m 0755 "$APT_KEYRINGS"
  for i in "${APT_CHANGED[@]}"; do
    commit_repo "$i"
  done
  commit_lists
  check_sources_readable
}

# Another source on the node may name the same repository with another key (some images ship
# their own microsoft-prod.list): apt then refuses every command, so check before installing.
check_sources_readable() {
  local errors
  if ((DRY_RUN)); then
    printf 'DRY-RUN: (check that apt reads every source)\n'
    return 0
  fi
  errors=$(apt-get indextargets 2>&1 >/dev/null) && return 0
  errors=$(grep -m1 '^E:' <<<"$errors" || true)
  errors=${errors#E: }
  [[ $errors != *"Conflicting values"* ]] ||
    errors+=" (another source on this node names the same repository with another key)"
  fail "$EXIT_APT" "apt cannot read its sources with the declared repositories added: ${errors:-apt-get indextargets failed}; the repositories' sources and keyrings were put back as they were"
}

commit_repo() {
  local i=$1 sources
  local name=${REPO_NAME[i]} keyring=${REPO_KEYRING[i]}
  sources=$APT_PARTS_DIR$APT_REPO_PREFIX$name.sources
  remember "$keyring"
  run install -m 0644 "$APT_STAGE/$name.gpg" "$keyring.tmp.$$"
  run mv -f -- "$keyring.tmp.$$" "$keyring"
  remember "$sources"
  run write_file "$sources" "${REPO_SOURCE[i]}"
}

# The staged index files, into apt's lists: the repository is not fetched a second time.
commit_lists() {
  local file target
  if ((DRY_RUN)); then
    run cp -p -- "$APT_STAGE/lists/(index files)" "$APT_LISTS_DIR"
    return 0
  fi
  for file in "$APT_STAGE"/lists/*; do
    [[ -f $file && ${file##*/} != lock ]] || continue
    target=$APT_LISTS_DIR${file##*/}
    [[ -e $target ]] || UNDO_REMOVE+=("$target")
    run cp -p -- "$file" "$target"
  done
}

# Before file $1 is replaced: keep a copy to restore, or note that it is new.
remember() {
  if ((DRY_RUN)); then
    return 0
  elif [[ -e $1 ]]; then
    cp -p -- "$1" "$APT_STAGE/backup/${#UNDO_RESTORE[@]}"
    UNDO_RESTORE+=("$1")
  else
    UNDO_REMOVE+=("$1")
  fi
}

# One apt-get install per group of packages that share an environment (e.g. ACCEPT_EULA=Y),
# passed by env to apt-get itself, so dpkg's maintainer scripts see it.
install_repo_packages() {
  local i packages=() group=() all=() rc
  for i in "${APT_CHANGED[@]}"; do
    read -r -a packages <<<"${REPO_PACKAGES[i]}"
    all+=("${packages[@]}")
  done
  update_for_dependencies "${all[@]}"
  for i in "${APT_CHANGED[@]}"; do
    while IFS=$'\t' read -r -a group; do
      ((${#group[@]})) || continue
      read -r -a packages <<<"${group[0]}"
      rc=0
      retry run env DEBIAN_FRONTEND=noninteractive "${group[@]:1}" apt-get -q -y \
        -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" install --no-install-recommends "${packages[@]}" ||
        rc=$?
      ((rc == 0)) || fail "$EXIT_APT" "installing ${packages[*]} from repository '${REPO_NAME[i]}' failed (apt-get exited with $rc, its output is above); the repositories' sources and keyrings were put back as they were"
    done <<<"${REPO_INSTALLS[i]}"
  done
}

# The packages' dependencies may come from the distribution, whose lists may be stale or
# missing on a fresh node: update every source, once, only when the install would download a
# package from a source other than the repositories just fetched.
update_for_dependencies() {
  if ((DRY_RUN)); then
    printf 'DRY-RUN: (apt-get update of every source, only if %s need packages from other sources)\n' "$*"
    return 0
  fi
  if ((APT_UPDATED)) || only_from_changed_repos "$@"; then
    return 0
  fi
  log "the packages need others from the distribution's sources: updating every source once"
  apt_get update
  APT_UPDATED=1
}

only_from_changed_repos() {
  local uris uri
  uris=$(apt-get -qq --print-uris install --no-install-recommends "$@" 2>/dev/null) || return 1
  while read -r uri _; do
    [[ -z $uri ]] || from_changed_repo "${uri//\'/}" || return 1
  done <<<"$uris"
}

from_changed_repo() {
  local i base bases
  for i in "${APT_CHANGED[@]}"; do
    read -r -a bases <<<"${REPO_URIS[i]}"
    for base in "${bases[@]}"; do
      [[ $1 == "${base%/}/"* ]] && return 0
    done
  done
  return 1
}

finish_apt_repositories() {
  UNDO_RESTORE=() UNDO_REMOVE=()
  run rm -rf -- "$APT_STAGE"
  APT_STAGE=""
}

# Called by fail(): put back what this run replaced, remove what it created and the stage.
undo_apt_repositories() {
  local i
  ((!DRY_RUN)) || return 0
  for i in "${!UNDO_RESTORE[@]}"; do
    cp -p -- "$APT_STAGE/backup/$i" "${UNDO_RESTORE[i]}"
  done
  if ((${#UNDO_REMOVE[@]})); then
    rm -f -- "${UNDO_REMOVE[@]}"
  fi
  if [[ -n $APT_STAGE && -d $APT_STAGE ]]; then
    rm -rf -- "$APT_STAGE"
  fi
}
