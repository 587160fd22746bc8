# BaseExceptions that are not SystemExit are run-errors too.
# status: run-error
# error-contains: KeyboardInterrupt
raise KeyboardInterrupt
