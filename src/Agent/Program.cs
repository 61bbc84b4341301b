using Tripline.Cli;

return TriplineCommand.Invoke(args);
