using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using TorchSharp;

namespace LongContext.Benchmarks.Infrastructure;

/// <summary>
/// The short mode: a plain runner over the same benchmark classes (no statistics). For every parameter combination and
/// every [Benchmark] method it runs [GlobalSetup], two invocations, [GlobalCleanup], and checks that the second
/// invocation left no live tensor behind and that cleanup released what setup made. Any exception or leak is a failure.
/// </summary>
public static class SmokeRunner
{
    /// <summary>Runs the suites; returns the number of failed cases.</summary>
    public static int Run(IEnumerable<Suite> suites, TextWriter output)
    {
        int failures = 0, cases = 0;
        var total = Stopwatch.StartNew();
        output.WriteLine($"smoke run on {BenchSettings.Device.type} ({BenchSettings.DType})");
        try
        {
            Baselines.RecipeChecks.Run();
            output.WriteLine("ok   the eager baselines match their masked / per-element references");
        }
        catch (Exception e)
        {
            failures++;
            output.WriteLine($"FAIL baseline check: {e.Message}");
        }
        foreach (Suite suite in suites)
        {
            foreach (Type type in suite.Types)
            {
                foreach (var parameters in Combinations(type))
                {
                    foreach (MethodInfo method in type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
                    {
                        cases++;
                        string label = $"{suite.Name,-10} {type.Name}.{method.Name}({string.Join(", ", parameters.Select(p => $"{p.Name}={p.Value}"))})";
                        try
                        {
                            string result = RunCase(type, method, parameters);
                            output.WriteLine($"ok   {label} {result}");
                        }
                        catch (Exception e)
                        {
                            failures++;
                            Exception inner = e is TargetInvocationException { InnerException: { } ie } ? ie : e;
                            output.WriteLine($"FAIL {label}: {inner.GetType().Name}: {inner.Message}");
                            output.WriteLine(inner.StackTrace);
                        }
                    }
                }
            }
        }
        output.WriteLine($"smoke: {cases - failures} passed, {failures} failed in {total.Elapsed.TotalSeconds:0.0} s");
        return failures;
    }

    private static string RunCase(Type type, MethodInfo method, IReadOnlyList<(string Name, object? Value)> parameters)
    {
        long before = LiveTensors();
        object instance = Activator.CreateInstance(type)!;
        foreach (var (name, value) in parameters) ParameterSetter.Set(instance, name, value);
        Invoke<GlobalSetupAttribute>(type, instance);
        double ms;
        long afterFirst, afterSecond;
        try
        {
            method.Invoke(instance, null);
            afterFirst = LiveTensors();
            var sw = Stopwatch.StartNew();
            method.Invoke(instance, null);
            ms = sw.Elapsed.TotalMilliseconds;
            afterSecond = LiveTensors();
        }
        finally
        {
            Invoke<GlobalCleanupAttribute>(type, instance);
        }
        long after = LiveTensors();
        if (afterSecond != afterFirst)
        {
            throw new TensorLeakException($"an invocation left {afterSecond - afterFirst} live tensor(s) behind (allocation growth across iterations)");
        }
        if (after > before)
        {
            throw new TensorLeakException($"setup/cleanup leaked {after - before} live tensor(s)");
        }
        string rate = "";
        if (instance is IWorkload workload)
        {
            Work w = workload.WorkOf(method.Name);
            if (w.Flops > 0) rate = string.Create(CultureInfo.InvariantCulture, $" {w.Flops / (ms * 1e-3) / 1e9:0.00} GFLOP/s");
            else if (w.Bytes > 0) rate = string.Create(CultureInfo.InvariantCulture, $" {w.Bytes / (ms * 1e-3) / 1e9:0.00} GB/s");
            else if (w.Tokens > 0) rate = string.Create(CultureInfo.InvariantCulture, $" {w.Tokens / (ms * 1e-3):0} tok/s");
        }
        return string.Create(CultureInfo.InvariantCulture, $"{ms:0.00} ms{rate}");
    }

    private static long LiveTensors() => DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;

    private static void Invoke<TAttribute>(Type type, object instance) where TAttribute : Attribute
    {
        foreach (MethodInfo m in type.GetMethods().Where(m => m.GetCustomAttribute<TAttribute>() is not null))
        {
            m.Invoke(instance, null);
        }
    }

    /// <summary>The cross product of every [Params], [ParamsSource] and [ParamsAllValues] member's values.</summary>
    public static IEnumerable<IReadOnlyList<(string Name, object? Value)>> Combinations(Type type)
    {
        var axes = new List<(string Name, object?[] Values)>();
        object probe = Activator.CreateInstance(type)!;
        foreach (MemberInfo member in type.GetMembers(BindingFlags.Public | BindingFlags.Instance))
        {
            Type? memberType = (member as PropertyInfo)?.PropertyType ?? (member as FieldInfo)?.FieldType;
            if (memberType is null) continue;
            if (member.GetCustomAttribute<ParamsAttribute>() is { } p)
            {
                axes.Add((member.Name, p.Values));
            }
            else if (member.GetCustomAttribute<ParamsSourceAttribute>() is { } source)
            {
                MemberInfo src = type.GetMember(source.Name, BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance).Single();
                object? values = src switch
                {
                    PropertyInfo pi => pi.GetValue(pi.GetMethod!.IsStatic ? null : probe),
                    MethodInfo mi => mi.Invoke(mi.IsStatic ? null : probe, null),
                    FieldInfo fi => fi.GetValue(fi.IsStatic ? null : probe),
                    _ => throw new InvalidOperationException($"{type.Name}.{source.Name} is not a property, method or field."),
                };
                axes.Add((member.Name, ((System.Collections.IEnumerable)values!).Cast<object?>().ToArray()));
            }
            else if (member.GetCustomAttribute<ParamsAllValuesAttribute>() is not null)
            {
                Type t = Nullable.GetUnderlyingType(memberType) ?? memberType;
                object?[] values = t == typeof(bool) ? [false, true] : Enum.GetValues(t).Cast<object?>().ToArray();
                axes.Add((member.Name, values));
            }
        }
        IEnumerable<IReadOnlyList<(string, object?)>> result = [Array.Empty<(string, object?)>()];
        foreach (var (name, values) in axes)
        {
            result = result.SelectMany(prefix => values.Select(v => (IReadOnlyList<(string, object?)>)[.. prefix, (name, v)])).ToArray();
        }
        return result;
    }
}

/// <summary>A benchmark left live tensors behind.</summary>
public sealed class TensorLeakException(string message) : InvalidOperationException(message);
