import DETRCommands

DETRCommand.main()
