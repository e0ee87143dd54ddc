#!/usr/bin/env bash
# Every C# example of README.md (and of the markdown files it links) compiles against the library; the ones that need
# no files also run, and printed values they state ("// prints 1.1386") are compared. Fails naming the README line
# of the block and the compiler error. Conventions: tests/LongContext.ReadmeCheck/Example.cs and README "Contributing".
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build tests/LongContext.ReadmeCheck -c Release -warnaserror --nologo -v q
dotnet tests/LongContext.ReadmeCheck/bin/Release/net10.0/LongContext.ReadmeCheck.dll --root "$(pwd)" README.md
