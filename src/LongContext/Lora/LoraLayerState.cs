namespace LongContext.Lora;

/// <summary>Book-keeping shared by the LoRA layers: adapters, which is active, merged and enabled flags.</summary>
internal sealed class LoraLayerState
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, LoraOptions> _options = new(StringComparer.Ordinal);

    public IReadOnlyList<string> Names => _order;
    public string Active { get; private set; } = "";
    public string? MergedAdapter { get; set; }
    public bool Enabled { get; set; } = true;

    public LoraOptions Options(string adapterName)
        => _options.TryGetValue(Guard.NotNull(adapterName), out var o)
            ? o
            : throw new ArgumentException($"adapter '{adapterName}' is not present; this layer holds [{string.Join(", ", _order)}].", nameof(adapterName));

    public LoraOptions ActiveOptions => _options[Active];

    public void Add(string adapterName, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(adapterName) || adapterName.Contains('.'))
            throw new ArgumentException($"adapter name must be non-empty and without dots; got '{adapterName}'.", nameof(adapterName));
        if (_options.ContainsKey(adapterName))
            throw new ArgumentException($"adapter '{adapterName}' is already present.", nameof(adapterName));
        _options.Add(adapterName, options);
        _order.Add(adapterName);
        if (_order.Count == 1) Active = adapterName;
    }

    public void SetActive(string adapterName)
    {
        _ = Options(adapterName);
        if (MergedAdapter is not null && MergedAdapter != adapterName)
            throw new InvalidOperationException($"adapter '{MergedAdapter}' is merged; unmerge it before activating '{adapterName}'.");
        Active = adapterName;
    }

    public void SetEnabled(bool value)
    {
        if (value != Enabled && MergedAdapter is not null)
            throw new InvalidOperationException($"adapter '{MergedAdapter}' is merged; unmerge it before enabling or disabling adapters.");
        Enabled = value;
    }

    public void BeginMerge()
    {
        if (MergedAdapter is not null)
            throw new InvalidOperationException($"adapter '{MergedAdapter}' is already merged; merging twice would add it twice. Call Unmerge first.");
        if (!Enabled)
            throw new InvalidOperationException("adapters are disabled; enable them before merging.");
    }

    public string BeginUnmerge()
        => MergedAdapter ?? throw new InvalidOperationException("no adapter is merged; nothing to unmerge.");
}
