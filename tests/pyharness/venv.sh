# Sourced by tests/*/run.sh: ensure_venv DIR creates DIR/.venv and installs
# DIR/requirements.txt into it, again only when that file changed.
ensure_venv() {
  local dir=$1 venv="$1/.venv" stamp want
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  stamp="$venv/.requirements.sha"
  want="$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$dir/requirements.txt"
    echo "$want" > "$stamp"
  fi
}
