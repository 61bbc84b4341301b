namespace Tripline.Cli;

internal static class ExitCodes
{
    public const int Success = 0;
    public const int RuntimeFailure = 1;
    public const int BadUsage = 2;
    public const int DeniedFlows = 3;
    /// <summary><c>recommend</c>: the policies were written, but some observed flows they do not allow (listed, with why).</summary>
    public const int NotCovered = 4;
}
