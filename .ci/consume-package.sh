#!/usr/bin/env bash
# Packs LongContext, LongContext.Text (a dependency of LongContext.Llama) and LongContext.Llama, then restores both from a local folder feed into a throw-away console
# project together with libtorch-cpu-linux-x64 and runs the consumer (.ci/consumer): PI RoPE against its closed form
# and a tiny Llama model through the LongLoRA recipe (train step and evaluation forward).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version="0.1.0-ci.$(date -u +%Y%m%d%H%M%S).$$"
feed="$work/feed"
for project in src/LongContext/LongContext.csproj src/LongContext.Text/LongContext.Text.csproj src/LongContext.Llama/LongContext.Llama.csproj; do
  dotnet pack "$project" -c Release -o "$feed" -p:Version="$version" --nologo
done
ls "$feed"/LongContext."$version".nupkg "$feed"/LongContext.Llama."$version".nupkg >/dev/null

mkdir -p "$work/consumer"
cp .ci/consumer/Program.cs "$work/consumer/Program.cs"
cat > "$work/consumer/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="local" value="$feed" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="local"><package pattern="LongContext" /><package pattern="LongContext.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
lib=$(sed -n 's:.*<LibTorchVersion>\(.*\)</LibTorchVersion>.*:\1:p' Directory.Packages.props)
cat > "$work/consumer/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="LongContext" Version="$version" />
    <PackageReference Include="LongContext.Llama" Version="$version" />
    <PackageReference Include="libtorch-cpu-linux-x64" Version="$lib" />
  </ItemGroup>
</Project>
XML
cd "$work/consumer"
dotnet run -c Release
