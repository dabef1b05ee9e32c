import ArgumentParser
struct DemoCommand: ParsableCommand {}
