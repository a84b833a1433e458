# Shared by the project's scripts (source it; needs the services' env).

# example_repo DIR NAMESPACE: a copy of examples/app at DIR/app with busybox, the
# local registry and NAMESPACE in its release.yaml, committed and pushed to a
# bare remote at DIR/remote.git. Leaves the shell in DIR/app.
example_repo() {
  local dir=$1 ns=$2
  git init -q --bare -b main "$dir/remote.git"
  cp -r examples/app "$dir/app"
  mkdir -p "$dir/app/bin" && cp "$RELCTL_TEST_BUSYBOX" "$dir/app/bin/busybox"
  sed -i "s|^registry: .*|registry: $RELCTL_TEST_REGISTRY|; s|^namespace: .*|namespace: $ns|" "$dir/app/release.yaml"
  cd "$dir/app"
  git init -q -b main
  git add -A
  git -c user.name=relctl -c user.email=relctl@example.invalid commit -q -m "example app"
  git remote add origin "$dir/remote.git"
  git push -q origin main
}
