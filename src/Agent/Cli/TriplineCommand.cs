using System.CommandLine;

namespace Tripline.Cli;

/// <summary>The <c>tripline</c> command line (design §2).</summary>
internal static class TriplineCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand("Tripline: audits the network flows of a Kubernetes node against its NetworkPolicies.");
        root.Subcommands.Add(ReplayCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(FlowsCommand.Create());
        root.Subcommands.Add(Tripline.WhatIf.WhatIfCommand.Create());
        root.Subcommands.Add(Tripline.Recommend.RecommendCommand.Create());
        root.Subcommands.Add(Tripline.Report.ReportCommand.Create());
        root.Subcommands.Add(ExplainCommand.Create());
        return root;
    }

    /// <summary>Parses and runs; bad usage exits 2 with the parser's messages, which name the option.</summary>
    public static int Invoke(string[] args)
    {
        var root = Create();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) Console.Error.WriteLine("tripline: " + error.Message);
            Console.Error.WriteLine("Run 'tripline --help' for usage.");
            return ExitCodes.BadUsage;
        }
        // Each command handles SIGTERM and SIGINT itself (StopSignal): the library's handler would end the process two
        // seconds after the signal, whatever the command was writing.
        return parse.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }
}
