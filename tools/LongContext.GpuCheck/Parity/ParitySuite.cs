namespace LongContext.GpuCheck.Parity;

/// <summary>Runs the parity groups in order; each group records its own rows and never stops the others.</summary>
internal static class ParitySuite
{
    /// <summary>Runs the selected groups.</summary>
    public static void Run(ParityContext context, IReadOnlyList<string> groups)
    {
        foreach (string group in CheckOptions.ParityGroups.Where(groups.Contains))
        {
            switch (group)
            {
                case "rope": RopeParity.Run(context); break;
                case "attention": AttentionParity.Run(context); break;
                case "lora": LoraParity.Run(context); break;
                case "quant": QuantParity.Run(context); break;
                case "checkpoint": CheckpointParity.Run(context); break;
                case "model": ModelParity.Run(context); break;
                default: GenerationParity.Run(context); break;
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }
}
