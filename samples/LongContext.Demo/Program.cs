using LongContext.Demo.Cli;
using Spectre.Console;
using Spectre.Console.Cli;

// The main program: the context-extension experiment (demo, the default) and the commands it is built from.
// Exit codes: 0 success (and, for demo, every expectation held), 1 error, 2 bad arguments, 3 the expected
// pattern was not reproduced (the measured numbers are printed and written).
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;   // CI logs: keep the results table on one line per row
var app = new CommandApp<DemoCommand>();
app.Configure(config =>
{
    config.SetApplicationName("LongContext.Demo");
    config.UseStrictParsing();
    config.AddCommand<DemoCommand>("demo")
        .WithDescription("The experiment: pretrained tiny Llama at L, extended to 4L by each method; perplexity and passkey at L, 2L, 4L (default command).")
        .WithExample("demo", "--quick");
    config.AddCommand<PretrainCommand>("pretrain")
        .WithDescription("Pretrain the tiny base at L from the seed and save it (bf16 safetensors + manifest).")
        .WithExample("pretrain", "--output", "samples/LongContext.Demo/data/base");
    config.AddCommand<ExtendCommand>("extend")
        .WithDescription("Fine-tune a model folder to a longer context (LongLoRA, LongQLoRA, PI + LoRA, ...) on a corpus; saves the adapter.")
        .WithExample("extend", "--model", "llama-2-7b-hf", "--device", "cuda", "--target-length", "16384", "--corpus", "pg19/train", "--method", "longqlora");
    config.AddCommand<EvalCommand>("eval")
        .WithDescription("Sliding-window perplexity (LongLoRA's protocol) and passkey retrieval by length for a model folder (+ adapter).")
        .WithExample("eval", "--model", "llama-2-7b-hf", "--adapter", "run/adapter", "--corpus", "pg19/test", "--lengths", "4096,8192,16384");
    config.AddCommand<GenerateCommand>("generate")
        .WithDescription("Generate text from a model folder (+ adapter) with the KV cache.")
        .WithExample("generate", "--model", "llama-2-7b-hf", "--prompt", "\"In the beginning\"");   // quoted: the help prints the words as typed
    config.SetExceptionHandler((exception, _) =>
    {
        switch (exception)
        {
            case CommandParseException or CommandRuntimeException:
                AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(ArgumentErrors.Describe(exception.Message, args))}");
                Console.Error.WriteLine("Run with --help for the options.");
                return ExitCodes.BadArguments;
            case var e when ArgumentErrors.IsExpected(e):   // a file, the data, the machine: the message says what, no trace
                AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(ArgumentErrors.Brief(e))}");
                return ExitCodes.Error;
            default:
                AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(exception.GetType().Name)}: {Markup.Escape(exception.Message)}");
                Console.Error.WriteLine(exception);
                return ExitCodes.Error;
        }
    });
});
// What the parser would misread silently: a value missing or empty, an option given twice (it keeps the last), a
// whole number that is not plain decimal (it reads 0x10 as 16).
if ((ArgumentErrors.MissingValue(args) ?? ArgumentErrors.Repeated(args) ?? ArgumentErrors.NotDecimal(args)) is { } misread)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(misread)}");
    Console.Error.WriteLine("Run with --help for the options.");
    return ExitCodes.BadArguments;
}
return app.Run(args);
