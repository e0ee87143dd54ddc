using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LongContext.ReadmeCheck;

/// <summary>
/// Compiles README blocks as top-level programs of a new console project (<c>dotnet new console</c>: nullable on,
/// its implicit usings) against the library and the framework this program runs on.
/// </summary>
internal sealed class ExampleCompiler
{
    /// <summary>The usings a new console project's <c>ImplicitUsings</c> adds.</summary>
    private const string ImplicitUsings = """
        global using global::System;
        global using global::System.Collections.Generic;
        global using global::System.IO;
        global using global::System.Linq;
        global using global::System.Net.Http;
        global using global::System.Threading;
        global using global::System.Threading.Tasks;
        """;

    private readonly IReadOnlyList<MetadataReference> _references;
    private readonly CSharpParseOptions _parse = new(LanguageVersion.Latest);

    /// <summary>References every assembly this process may load: the framework and the library with its dependencies.</summary>
    public ExampleCompiler()
    {
        string tpa = AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string
            ?? throw new InvalidOperationException("the runtime did not report its trusted platform assemblies.");
        _references = tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            .Where(p => !Path.GetFileName(p).StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToList();
    }

    /// <summary>Compiles one example. Warnings count as failures too (a reader who pastes the block should get a clean
    /// build), except the two assembly-unification notes a new SDK project suppresses by default (CS1701, CS1702).</summary>
    /// <returns>The assembly bytes, or the errors and warnings mapped to markdown lines ("README.md:46: CS0103: ...").</returns>
    public (byte[]? Assembly, IReadOnlyList<string> Errors) Compile(Example example, int index)
    {
        var trees = new[]
        {
            CSharpSyntaxTree.ParseText(ImplicitUsings, _parse, path: "ImplicitUsings.g.cs"),
            CSharpSyntaxTree.ParseText(example.Source, _parse, path: example.Block.File),
        };
        var options = new CSharpCompilationOptions(OutputKind.ConsoleApplication,
                nullableContextOptions: NullableContextOptions.Enable, optimizationLevel: OptimizationLevel.Debug)
            .WithSpecificDiagnosticOptions([new("CS1701", ReportDiagnostic.Suppress), new("CS1702", ReportDiagnostic.Suppress)]);
        var compilation = CSharpCompilation.Create($"ReadmeExample{index}", trees, _references, options);
        using var stream = new MemoryStream();
        var result = compilation.Emit(stream);
        var problems = result.Diagnostics
            .Where(d => d.Severity >= DiagnosticSeverity.Warning && !d.IsSuppressed)
            .OrderByDescending(d => d.Severity)
            .Select(d =>
            {
                var span = d.Location.GetMappedLineSpan();
                string where = span.IsValid && span.HasMappedPath ? $"{span.Path}:{span.StartLinePosition.Line + 1}" : example.Block.Where;
                string kind = d.Severity == DiagnosticSeverity.Warning ? "warning " : "";
                return $"{where}: {kind}{d.Id}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
            })
            .ToList();
        return result.Success && problems.Count == 0 ? (stream.ToArray(), []) : (null, problems);
    }

    /// <summary>Runs a compiled example in <paramref name="folder"/>, returning its standard output.</summary>
    /// <exception cref="TimeoutException">It ran past <paramref name="timeout"/>.</exception>
    public static string Run(byte[] assemblyBytes, string folder, TimeSpan timeout)
    {
        Assembly assembly = Assembly.Load(assemblyBytes);
        MethodInfo entry = assembly.EntryPoint ?? throw new InvalidOperationException("the example has no entry point.");
        TextWriter console = Console.Out;
        string cwd = Directory.GetCurrentDirectory();
        using var output = new StringWriter();
        Console.SetOut(output);
        Directory.SetCurrentDirectory(folder);
        try
        {
            var run = Task.Run(() => entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]));
            if (!run.Wait(timeout)) throw new TimeoutException($"the example ran longer than {timeout.TotalSeconds:F0} s.");
            return output.ToString();
        }
        catch (AggregateException e) when (e.InnerException is TargetInvocationException { InnerException: { } inner })
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
            throw;
        }
        finally
        {
            Console.SetOut(console);
            Directory.SetCurrentDirectory(cwd);
        }
    }
}
