namespace Tripline.Export;

/// <summary>Why records were folded rather than written: the <c>reason</c> of aggregates and of the folded-records metric.</summary>
internal enum FoldReason
{
    /// <summary><c>--flow-log-aggregate</c>: a flow that started and ended within the interval.</summary>
    Short,
    /// <summary>The records-per-second budget was spent: the flow went into its source's aggregate.</summary>
    RateLimit,
    /// <summary>An update record skipped while the budget was spent; the flow's end record carries its totals.</summary>
    Update,
}

internal static class FoldReasons
{
    public static readonly FoldReason[] All = Enum.GetValues<FoldReason>();

    public static string Name(FoldReason reason) => reason switch
    {
        FoldReason.Short => "short",
        FoldReason.RateLimit => "rate_limit",
        _ => "update",
    };
}
