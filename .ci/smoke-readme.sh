#!/usr/bin/env bash
# Every C# example of README.md (and of the markdown files it links) compiles against the library; the ones that need
# no files also run, and printed values they state ("// prints 1.1386") are compared. Fails naming the README line
# of the block and the compiler error. Conventions: README "Contributing" and tests/LongContext.ReadmeCheck/Example.cs.
# First the checker checks itself on tests/LongContext.ReadmeCheck/SelfTest/*.md: each file states the exit code and the
# output lines it must produce (<!-- expect-exit: N -->, <!-- expect-output: TEXT -->), so a checker that stopped
# failing on a broken block or a wrong printed value fails here.
# Needs only the .NET SDK and nuget.org (it restores its own packages); about 10 s after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build tests/LongContext.ReadmeCheck -c Release -warnaserror --nologo -v q
check=(dotnet tests/LongContext.ReadmeCheck/bin/Release/net10.0/LongContext.ReadmeCheck.dll --root "$(pwd)")

for md in tests/LongContext.ReadmeCheck/SelfTest/*.md; do
  want=$(sed -nE 's/^<!-- expect-exit: ([0-9]+) -->$/\1/p' "$md")
  set +e
  out=$("${check[@]}" "$md" 2>&1)
  rc=$?
  set -e
  bad=0
  [ "$rc" = "$want" ] || { echo "self-test $md: exit code $rc, expected $want"; bad=1; }
  while IFS= read -r line; do
    grep -qF -- "$line" <<<"$out" || { echo "self-test $md: output lacks: $line"; bad=1; }
  done < <(sed -nE 's/^<!-- expect-output: (.*) -->$/\1/p' "$md")
  if [ "$bad" != 0 ]; then
    echo "--- checker output for $md:"; echo "$out"
    exit 1
  fi
  echo "self-test ok: $md"
done

"${check[@]}" README.md
