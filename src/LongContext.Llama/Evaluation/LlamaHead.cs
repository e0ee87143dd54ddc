using TorchSharp.Modules;

namespace LongContext.Llama.Evaluation;

/// <summary>The output head's weight of a <see cref="LlamaForCausalLM"/>, read through the registered parameter.</summary>
internal static class LlamaHead
{
    /// <summary>
    /// <c>lm_head.weight</c>, or the embedding table (<see cref="LlamaModel.EmbeddingWeight"/>, the base table under
    /// LoRA on <c>embed_tokens</c>, as the tied head reads it) when the embeddings are tied (the registered parameter
    /// objects: no new native handle per call).
    /// </summary>
    /// <exception cref="NotSupportedException">The head is wrapped (e.g. LoRA on <c>lm_head</c>) so no plain weight exists.</exception>
    public static Parameter Weight(LlamaForCausalLM model)
    {
        if (model.Config.TieWordEmbeddings) return model.Model.EmbeddingWeight;
        const string name = "lm_head.weight";
        foreach (var (n, p) in model.named_parameters())
            if (n == name) return p;
        throw new NotSupportedException(
            $"the model has no parameter '{name}' (is lm_head wrapped, e.g. by LoRA?); the evaluation needs the plain head weight.");
    }
}
