"""``python -m gd_doctor`` runs the same CLI as the ``gd-doctor`` command."""

from gd_doctor.entry import main

if __name__ == "__main__":
    main()
